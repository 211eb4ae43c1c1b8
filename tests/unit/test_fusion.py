import pytest

from memos_cluster.tiers.plaintext.fusion import minmax_fuse, rrf_fuse


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


def test_score_fusion_keeps_the_margin_of_a_strong_match():
    bm25 = [("strong", 9.0), ("b", 2.0), ("c", 1.0)]
    dense = [("b", 0.61), ("c", 0.60), ("strong", 0.10)]
    fused = minmax_fuse([dense, bm25], weights=[0.3, 0.7])
    assert fused[0] == ("strong", pytest.approx(0.7))
    assert [key for key, _ in fused] == ["strong", "b", "c"]


def test_score_fusion_handles_flat_and_empty_lists():
    assert minmax_fuse([[("a", 1.0), ("b", 1.0)], []]) == [("a", 1.0), ("b", 1.0)]
    with pytest.raises(ValueError):
        minmax_fuse([[("a", 1.0)]], weights=[1.0, 1.0])
