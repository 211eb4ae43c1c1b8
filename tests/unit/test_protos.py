"""The committed generated code matches protos/ (regenerate with scripts/gen_protos.sh)."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GENERATED = REPO / "memos_cluster" / "api" / "memos" / "v1"


def test_generated_code_is_current(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-Imemos_cluster/api={REPO / 'protos'}",
         f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}",
         str(REPO / "protos" / "memos" / "v1" / "memos.proto")],
        check=True, cwd=REPO)
    fresh = tmp_path / "memos_cluster" / "api" / "memos" / "v1"
    for name in ("memos_pb2.py", "memos_pb2.pyi", "memos_pb2_grpc.py"):
        assert (fresh / name).read_text() == (GENERATED / name).read_text(), \
            f"{name} is stale: run scripts/gen_protos.sh"
