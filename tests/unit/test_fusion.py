import pytest

from memos_cluster.fusion import rrf_fuse


def test_documents_found_by_both_retrievers_win():
    fused = rrf_fuse([["a", "b", "c"], ["c", "a", "d"]], k=60)
    assert [key for key, _ in fused] == ["a", "c", "b", "d"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_weights_shift_the_balance():
    lists = [["dense-top", "shared"], ["bm25-top", "shared"]]
    assert rrf_fuse(lists, k=0, weights=[3.0, 1.0])[0][0] == "dense-top"
    assert rrf_fuse(lists, k=0, weights=[1.0, 3.0])[0][0] == "bm25-top"


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        rrf_fuse([["a"]], weights=[1.0, 2.0])
    with pytest.raises(ValueError):
        rrf_fuse([["a"]], k=-1)
