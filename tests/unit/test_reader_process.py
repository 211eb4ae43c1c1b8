"""The reader in a child process (reader/process.py): the same structures as in-process, and a
worker that dies costs one failed read, not the reader."""
import os
import signal

import pytest
from concurrent.futures.process import BrokenProcessPool

from memos_cluster.reader import ReaderInput, SpacyReader
from memos_cluster.reader.process import ProcessReader

MAY_8 = 1683504000000  # 8 May 2023, 00:00 UTC (ms)
TURNS = [ReaderInput("Caroline: I went to a LGBTQ support group yesterday.", MAY_8),
         ReaderInput("Melanie: Caroline and I went camping at the lake last weekend.", MAY_8),
         ReaderInput("", MAY_8)]


def test_a_child_process_reads_what_the_shard_would_and_survives_its_worker():
    reader = ProcessReader(max_chars=2000)
    try:
        assert reader.read_many(TURNS) == SpacyReader(max_chars=2000).read_many(TURNS)
        assert reader.name.startswith("spacy:") and reader.read_many([]) == []
        worker = reader._executor().submit(os.getpid).result()  # the one worker's pid
        os.kill(worker, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            reader.read_many(TURNS[:1])
        assert reader.read_many(TURNS[:1])[0].times[0].label() == "7 May 2023"
    finally:
        reader.close()
    assert reader._pool is None


ORPHAN = """
import os, signal
from memos_cluster.reader import ReaderInput
from memos_cluster.reader.process import ProcessReader
reader = ProcessReader(2000)
reader.read_many([ReaderInput("Sam: I went there yesterday.", 0)])
print(reader._executor().submit(os.getpid).result(), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_worker_outlives_a_killed_shard_by_a_second_at_most():
    import subprocess
    import sys
    import time

    done = subprocess.run([sys.executable, "-c", ORPHAN], capture_output=True, text=True,
                          timeout=120)
    worker = int(done.stdout.split()[-1])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{worker}"):
        time.sleep(0.2)
    assert not os.path.exists(f"/proc/{worker}")
