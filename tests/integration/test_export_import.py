"""A cube exported as Parquet (through the CLI, a driver joining the running cluster) and
imported under a new id answers every search as the original: dense search with the same hits,
order and scores, BM25 and hybrid up to the BM25 statistics of the shard it lands on; history,
metadata, dates and entities come along; importing over an existing cube is refused."""
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from actors.cube_transfer import import_cube
from memos_cluster.client import MemosClient
from memos_cluster.core.errors import AlreadyExists
from memos_cluster.core.types import NewMemory, SearchMode
from memos_cluster.data.archive import read_archive
from memos_cluster.data.locomo import locomo_texts

QUERIES = ["support group", "painting for the library", "camping trip with the kids",
           "what did Melanie say about pottery", "adoption agencies"]


def test_export_then_import_reproduces_search_results(grpc_address, config, tmp_path):
    from memos_cluster.cli.main import default_locomo_path

    texts = locomo_texts(default_locomo_path(), first=1)[:150]
    client = MemosClient(grpc_address, timeout_s=120)
    source, copy = "export-src", "export-copy"
    client.create_cube(source, description="to be exported", metadata={"owner": "ann"})
    items = [NewMemory(t, id=f"t{i}", metadata={"i": i}) for i, t in enumerate(texts)]
    for start in range(0, len(items), 50):  # the session's batch limit
        client.add(source, items[start:start + 50])
    client.update(source, "t3", "Caroline joined a new support group in May")
    out = tmp_path / "export"
    try:
        cli = Path(sys.executable).with_name("memos-cluster")
        done = subprocess.run([str(cli), "--set", "ray.address=auto", "--set",
                               f"data_dir={config.data_dir}", "export", source, "--out",
                               str(out)], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert {p.name for p in out.iterdir()} == \
            {"memories.parquet", "history.parquet", "entities.parquet"}
        archive = read_archive(str(out))
        assert len(archive.export.memory_rows) == len(texts)
        assert {r["name"] for r in archive.export.entity_rows} >= {"Caroline", "Melanie"}
        import_cube(config, str(out), copy)
        with pytest.raises(AlreadyExists):
            import_cube(config, str(out), copy)
        assert client.get_cube(copy).num_memories == len(texts)
        assert client.get_cube(copy).num_history_versions == 1
        assert [m.text for m in client.history(copy, "t3")] == \
            [m.text for m in client.history(source, "t3")]
        got = client.get(copy, ["t3", "t7"]).items
        assert got[1].metadata == {"i": 7} and got[0].version == 2
        assert got[0].structure == client.get(source, ["t3"]).items[0].structure
        assert client.list_entities(copy) == \
            replace(client.list_entities(source), entities=tuple(
                replace(e, cube_id=copy) for e in client.list_entities(source).entities))
        for query in QUERIES:
            for mode in (None, SearchMode.DENSE, SearchMode.BM25):
                kwargs = {"mode": mode} if mode else {}
                a = [h.item.id for h in client.search(source, query, top_k=10, **kwargs)]
                b = [h.item.id for h in client.search(copy, query, top_k=10, **kwargs)]
                # Dense scores are the stored vectors' (copied, not re-embedded): the same
                # hits in the same order with the same scores. BM25's statistics (document
                # frequencies, average length) cover every cube of a shard's collection, so a
                # copy on another shard, beside other cubes, scores differently (seen: 0.2792 vs
                # 0.2794 alone, up to 3.6% apart beside other tests' cubes), and hybrid fuses
                # those: near-ties can swap (seen: ranks 5 and 6 of "support group" once the
                # session's other cubes indexed resolved dates). The same best hit and all hits
                # but one in common, there.
                if mode is SearchMode.DENSE:
                    dense = client.search(source, query, top_k=10, **kwargs)
                    again = client.search(copy, query, top_k=10, **kwargs)
                    assert a == b, (query, mode)
                    assert [h.score for h in again] == \
                        pytest.approx([h.score for h in dense], abs=1e-4)
                else:
                    assert a[0] == b[0] and len(a) == len(b), (query, mode, a, b)
                    assert len(set(a) & set(b)) >= len(a) - 1, (query, mode, a, b)
    finally:
        client.delete_cube(source)
        if copy in {c.cube_id for c in client.list_cubes()}:
            client.delete_cube(copy)
        client.close()
