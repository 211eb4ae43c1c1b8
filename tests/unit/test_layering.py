"""The core imports neither ray nor grpc: Ray lives in actors/, gRPC in the client's transport
module and the generated API code (DESIGN.md, "Layers and rooms")."""
import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "memos_cluster"
ALLOWED = {CORE / "client" / "grpc_transport.py"}
GENERATED = CORE / "api" / "memos"


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_modules_import_neither_ray_nor_grpc():
    offenders = [str(p.relative_to(CORE)) for p in CORE.rglob("*.py")
                 if p not in ALLOWED and GENERATED not in p.parents
                 and imported_roots(p) & {"ray", "grpc"}]
    assert offenders == []
