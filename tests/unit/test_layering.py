"""The folders are the layers (DESIGN.md, ARCHITECTURE.md): a table of what each folder may never
import, no import cycle between folders, no project module imported by a string, heavy libraries
imported only where they are used. Every import counts, also those inside functions.

The checks are functions of a {module: source} map, so the last tests can feed them a broken
tree and see each rule fail."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, Mapping

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "memos_cluster"
GENERATED = f"{PACKAGE}.api.memos"

LIBRARY = ("core", "placement", "embed", "reader", "auth", "tiers", "scheduler", "data", "deploy", "console")
EDGE_FOLDERS = ("api", "client")
ENTRY_FOLDERS = ("cli", "bench")
EDGES_AND_ENTRIES = tuple(f"{PACKAGE}.{f}" for f in (*EDGE_FOLDERS, *ENTRY_FOLDERS))
# folder -> import prefixes it may never make (rules 1-3 of the layout issue).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    **{f: ("ray", "grpc", "actors", f"{PACKAGE}.api", f"{PACKAGE}.client", f"{PACKAGE}.cli",
           f"{PACKAGE}.bench") for f in LIBRARY},
    "core": ("ray", "grpc", "actors", *(f"{PACKAGE}.{f}" for f in LIBRARY if f != "core"),
             *EDGES_AND_ENTRIES),
    "api": ("ray", "actors", *(f"{PACKAGE}.{f}" for f in LIBRARY if f != "core"),
            f"{PACKAGE}.client", f"{PACKAGE}.cli", f"{PACKAGE}.bench"),
    "client": ("actors", *(f"{PACKAGE}.{f}" for f in LIBRARY if f != "core"),
               f"{PACKAGE}.cli", f"{PACKAGE}.bench"),
    "actors": (f"{PACKAGE}.cli", f"{PACKAGE}.bench"),
    "cli": (),
    "bench": (),
}
# The only modules outside actors/ that may import these (Ray transport, gRPC transport, the
# benchmarks' Ray-side helpers).
ONLY_IN: dict[str, tuple[str, ...]] = {
    "ray": (f"{PACKAGE}.client.ray_transport", f"{PACKAGE}.bench.ray_ops"),
    "grpc": (f"{PACKAGE}.client.grpc_transport", f"{PACKAGE}.api."),
}
# Imported only inside the functions that use them (a module-level import loads them into every
# process that imports the module, the gateway and the CLI included).
HEAVY = ("torch", "transformers", "peft", "pymilvus", "onnxruntime", "sentence_transformers",
         "safetensors", "onnx")


def project_sources(root: Path = REPO) -> dict[str, str]:
    """{dotted module name: source} of memos_cluster/ and actors/, generated code left out."""
    sources = {}
    for top in (PACKAGE, "actors"):
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join(parts)
            if not name.startswith(GENERATED):
                sources[name] = path.read_text()
    return sources


def folder_of(module: str) -> str:
    """The layer a module belongs to: actors, or memos_cluster's first folder (tiers by tier)."""
    parts = module.split(".")
    if parts[0] == "actors":
        return "actors"
    if len(parts) == 1:
        return "root"
    if parts[1] == "tiers" and len(parts) > 2:
        return f"tiers.{parts[2]}"
    return parts[1]


def rule_folder(folder: str) -> str:
    return folder.split(".")[0]


def imports(module: str, source: str) -> Iterator[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import in the source."""
    tree = ast.parse(source)
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        at_top = id(node) in top_level
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, at_top
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package (approximately; none are used)
                base = module.split(".")[:-node.level]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            yield name, node.lineno, at_top
            for alias in node.names:  # `from package import module`
                yield f"{name}.{alias.name}", node.lineno, at_top


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".") or (
        prefix.endswith(".") and name.startswith(prefix))


def forbidden_imports(sources: Mapping[str, str]) -> list[str]:
    found = []
    for module, source in sources.items():
        folder = folder_of(module)
        banned = FORBIDDEN.get(rule_folder(folder), ())
        for name, line, _ in imports(module, source):
            if any(_matches(name, prefix) for prefix in banned):
                found.append(f"{module}:{line} imports {name} ({rule_folder(folder)} may not)")
            for library, allowed in ONLY_IN.items():
                if _matches(name, library) and folder != "actors" and not any(
                        _matches(module, a) for a in allowed):
                    found.append(f"{module}:{line} imports {name} (only {allowed} and actors/)")
    return sorted(set(found))


def folder_graph(sources: Mapping[str, str]) -> dict[str, set[str]]:
    modules = set(sources)
    graph: dict[str, set[str]] = {}
    for module, source in sources.items():
        here = folder_of(module)
        for name, _, _ in imports(module, source):
            if name in modules and folder_of(name) not in (here, "root"):
                graph.setdefault(here, set()).add(folder_of(name))
    return graph


def folder_cycles(sources: Mapping[str, str]) -> list[list[str]]:
    """Every cycle found by a depth-first walk of the folder graph (empty: none)."""
    graph, cycles, state = folder_graph(sources), [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return cycles


def dynamic_imports(sources: Mapping[str, str]) -> list[str]:
    """Imports by a string anywhere in the project (`import_module`, `__import__`): project
    modules are imported plainly, where a reader and this test see them. (Finding a package
    without importing it, importlib.util.find_spec, is allowed.)"""
    found = []
    for module, source in sources.items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module == "importlib" and any(
                    a.name == "import_module" for a in node.names):
                found.append(f"{module}:{node.lineno} imports import_module")
            elif isinstance(node, ast.Attribute) and node.attr == "import_module":
                found.append(f"{module}:{node.lineno} calls import_module")
            elif isinstance(node, ast.Name) and node.id == "__import__":
                found.append(f"{module}:{node.lineno} calls __import__")
    return found


def eager_heavy_imports(sources: Mapping[str, str]) -> list[str]:
    return sorted(f"{module}:{line} imports {name} at module level"
                  for module, source in sources.items()
                  for name, line, at_top in imports(module, source)
                  if at_top and name.split(".")[0] in HEAVY)


@pytest.fixture(scope="module")
def sources():
    return project_sources()


def test_no_folder_makes_a_forbidden_import(sources):
    assert forbidden_imports(sources) == []


def test_no_import_cycle_between_folders(sources):
    assert folder_cycles(sources) == []


def test_no_project_module_is_imported_by_a_string(sources):
    assert dynamic_imports(sources) == []


def test_heavy_libraries_are_imported_where_they_are_used(sources):
    assert eager_heavy_imports(sources) == []


def test_every_module_is_in_a_known_folder(sources):
    folders = {rule_folder(folder_of(m)) for m in sources} - {"root"}
    assert folders <= set(FORBIDDEN), folders - set(FORBIDDEN)


# ---- the checks catch what they are for -----------------------------------------------------
def test_each_rule_fails_on_a_tree_that_breaks_it(sources):
    broken = dict(sources)
    broken[f"{PACKAGE}.tiers.plaintext.oops"] = "import ray\nfrom actors import handles\n"
    broken[f"{PACKAGE}.core.oops"] = ("def f():\n"
                                      "    from memos_cluster.tiers.plaintext import tier\n")
    broken["actors.oops"] = "from memos_cluster.bench import drills\n"
    broken[f"{PACKAGE}.client.oops"] = "from memos_cluster.tiers.activation import engine\n"
    found = forbidden_imports(broken)
    assert any("tiers.plaintext.oops:1 imports ray" in f for f in found)
    assert any("tiers.plaintext.oops:2 imports actors" in f for f in found)
    assert any("core.oops:2 imports memos_cluster.tiers" in f for f in found)
    assert any("actors.oops:1 imports memos_cluster.bench" in f for f in found)
    assert any("client.oops:1 imports memos_cluster.tiers" in f for f in found)

    broken = dict(sources)
    broken[f"{PACKAGE}.core.back"] = "from memos_cluster.placement import shardmap\n"
    assert folder_cycles(broken)  # placement imports core, and now core imports placement

    broken = dict(sources)
    broken[f"{PACKAGE}.client.dyn"] = ("import importlib\n"
                                       "importlib.import_module('actors.handles')\n")
    assert dynamic_imports(broken) == [f"{PACKAGE}.client.dyn:2 calls import_module"]

    broken = dict(sources)
    broken[f"{PACKAGE}.tiers.activation.eager"] = "import torch\n"
    assert eager_heavy_imports(broken) == [
        f"{PACKAGE}.tiers.activation.eager:1 imports torch at module level"]
