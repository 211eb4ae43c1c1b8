import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from memos_cluster.core.errors import InvalidArgument
from memos_cluster.data.locomo import locomo_memories
from memos_cluster.data.records import batches, read_memories

SAMPLE = {
    "sample_id": "conv-x",
    "conversation": {
        "speaker_a": "Ann", "speaker_b": "Bo",
        "session_2_date_time": "9:00 am on 2 June, 2023",
        "session_2": [{"speaker": "Bo", "dia_id": "D2:1", "text": "Later."}],
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Ann", "dia_id": "D1:1", "text": "Hi!"},
            {"speaker": "Bo", "dia_id": "D1:2", "text": "Look", "blip_caption": "a photo of a dog",
             "query": "dog", "img_url": ["http://x"]},
        ],
    },
    "qa": [{"question": "secret question", "answer": "secret", "evidence": ["D1:1"]}],
    "observation": {"x": "secret observation"},
    "session_summary": {"x": "secret summary"},
}


def test_locomo_turns_become_memories_in_session_order():
    memories = locomo_memories(SAMPLE)
    assert [m.id for m in memories] == ["D1-1", "D1-2", "D2-1"]
    assert memories[1].text == "Bo: Look [shares a photo of a dog]"
    assert memories[0].metadata == {"speaker": "Ann", "session": 1, "dia_id": "D1:1"}
    assert memories[0].event_time_ms == 1683554160000  # 2023-05-08 13:56 UTC
    assert memories[2].event_time_ms > memories[0].event_time_ms
    # Context: the previous turn of the same session, never across sessions.
    assert [m.context for m in memories] == ["", "Ann: Hi!", ""]
    assert [m.context for m in locomo_memories(SAMPLE, context_turns=0)] == ["", "", ""]
    long = dict(SAMPLE, conversation=dict(SAMPLE["conversation"], session_1=[
        {"speaker": "Ann", "dia_id": f"D1:{i}", "text": f"t{i}"} for i in range(1, 5)]))
    assert locomo_memories(long, context_turns=2)[3].context == "Ann: t2\nAnn: t3"


def test_locomo_ingests_nothing_derived_from_questions_or_summaries():
    text = " ".join(m.text + m.context + json.dumps(m.metadata) for m in locomo_memories(SAMPLE))
    assert "secret" not in text and "http" not in text


def test_jsonl_json_and_parquet_agree(tmp_path):
    records = [{"text": "a", "id": "1", "metadata": {"k": 1}, "event_time": "2023-05-08T00:00:00"},
               {"text": "b", "memory_type": "note", "source": "s"}]
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    plain = tmp_path / "r.json"
    plain.write_text(json.dumps(records))
    parquet = tmp_path / "r.parquet"
    pq.write_table(pa.Table.from_pylist([{"text": "a", "id": "1"}, {"text": "b", "id": None}]),
                   parquet)
    from_jsonl = list(read_memories(str(jsonl)))
    assert from_jsonl == list(read_memories(str(plain)))
    assert from_jsonl[0].event_time_ms == 1683504000000
    assert from_jsonl[1].memory_type == "note" and from_jsonl[1].id is None
    assert [(m.text, m.id) for m in read_memories(str(parquet))] == [("a", "1"), ("b", None)]


def test_locomo_files_are_detected_and_filtered(tmp_path):
    path = tmp_path / "l.json"
    path.write_text(json.dumps([SAMPLE, dict(SAMPLE, sample_id="conv-y")]))
    assert len(list(read_memories(str(path)))) == 6
    assert len(list(read_memories(str(path), conversations=["conv-y"]))) == 3


def test_records_without_text_and_unknown_formats_are_refused(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "x"}\n')
    with pytest.raises(InvalidArgument):
        list(read_memories(str(path)))
    with pytest.raises(InvalidArgument):
        list(read_memories(str(tmp_path / "r.csv")))


def test_batches_cover_everything():
    assert [len(b) for b in batches(range(7), 3)] == [3, 3, 1]


def test_a_bulk_run_fails_loudly_when_the_cube_holds_fewer_rows_than_were_acknowledged():
    from memos_cluster.core.errors import FailedPrecondition
    from memos_cluster.data.bulk import IngestReport, check_complete

    report = IngestReport(records=600, inserted=600, skipped=400, seconds=1.0,
                          wait_embed_seconds=0.0, write_seconds=0.0)
    check_complete(report, 1000, "c")
    check_complete(report, 1200, "c")  # the cube may hold other memories too
    with pytest.raises(FailedPrecondition, match="holds 999 memories, but 1000"):
        check_complete(report, 999, "c")
