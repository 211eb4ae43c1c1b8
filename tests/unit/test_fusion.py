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


def test_a_reply_is_lifted_by_the_turn_it_answers():
    from memos_cluster.tiers.plaintext.fusion import spread_to_neighbours

    fused = [("question-turn", 1.0), ("stranger", 0.5), ("reply", 0.4)]
    spread = spread_to_neighbours(fused, {"reply": "question-turn"}, share=0.25)
    # reply: 0.4 + 0.25 * 1.0 = 0.65 passes the stranger; the turn gains 0.25 * 0.4.
    assert spread == [("question-turn", pytest.approx(1.1)), ("reply", pytest.approx(0.65)),
                      ("stranger", 0.5)]


def test_a_neighbour_no_retriever_returned_is_not_added():
    from memos_cluster.tiers.plaintext.fusion import spread_to_neighbours

    fused = [("a", 1.0), ("b", 0.2)]
    spread = spread_to_neighbours(fused, {"c": "a", "a": "z"}, share=0.5)
    assert [key for key, _ in spread] == ["a", "b"]
    assert spread == fused
    assert spread_to_neighbours(fused, {"b": "a"}, share=0.0) == fused


def test_predecessors_are_read_off_the_context_within_a_cube():
    from memos_cluster.tiers.plaintext.candidates import predecessors

    rows = {"1": {"cube_id": "c", "text": "A: hi", "context": ""},
            "2": {"cube_id": "c", "text": "B: yes, in May", "context": "X: old\nA: hi"},
            "3": {"cube_id": "other", "text": "B: no", "context": "A: hi"},
            "4": {"cube_id": "c", "text": "A: hi again", "context": "Y: not a candidate"}}
    assert predecessors(rows) == {"2": "1"}


def test_explained_parts_add_up_to_each_candidates_score():
    from memos_cluster.tiers.plaintext.dates import TimeMatches
    from memos_cluster.tiers.plaintext.fusion import explain_hybrid, fuse_hybrid

    dense = [("reply", 0.7), ("dated", 0.5), ("named", 0.3)]
    sparse = [("dated", 6.0), ("other", 4.0), ("reply", 1.0)]
    knobs = dict(neighbour_share=0.5, predecessor=lambda: {"reply": "other"},
                 date_boost=0.5, when_boost=0.25,
                 times=lambda: TimeMatches(frozenset({"dated"}), frozenset({"dated", "named"})),
                 entity_boost=0.1, entity_shares=lambda: {"named": 0.5})
    ranked = fuse_hybrid([dense, sparse], [0.4, 0.6], **knobs)
    parts = explain_hybrid(dense, sparse, [0.4, 0.6], **knobs)
    assert set(parts) == {key for key, _ in ranked}
    for key, score in ranked:
        p = parts[key]
        assert p.fused + p.neighbour + p.date + p.when + p.entity == pytest.approx(score)
    assert (parts["dated"].dense_rank, parts["dated"].bm25_rank) == (2, 1)
    assert (parts["other"].dense_rank, parts["other"].dense_score) == (0, 0.0)
    assert parts["dated"].date == 0.5 and parts["dated"].when == 0.25
    assert parts["named"].entity == pytest.approx(0.05) and parts["named"].date == 0.0
    assert parts["reply"].neighbour == pytest.approx(0.5 * parts["other"].fused)
