"""KubeRay manifests from the Serve config: k8s/base/rayservice.yaml carries
serve_configs/serve-prod.yaml verbatim as spec.serveConfigV2 (one source of truth).

`memos-cluster k8s` rewrites that block from the file; `memos-cluster k8s --check` (and a unit
test) fail when they differ. Text-based, so the manifest's comments and layout survive.
"""
from __future__ import annotations

from pathlib import Path

from memos_cluster.errors import FailedPrecondition
from memos_cluster.serve_config import PROD_SERVE_CONFIG

K8S_DIR = Path(__file__).resolve().parents[1] / "k8s"
RAYSERVICE = K8S_DIR / "base" / "rayservice.yaml"
KEY = "serveConfigV2: |"


def with_serve_config(manifest: str, serve_config: str) -> str:
    """The manifest with its `serveConfigV2: |` block replaced by serve_config (indented two
    spaces deeper than the key)."""
    lines = manifest.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == KEY]
    if len(starts) != 1:
        raise FailedPrecondition(f"expected one '{KEY}' line in the manifest, found {len(starts)}")
    start = starts[0]
    key_indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines) and (not lines[end].strip()
                                or len(lines[end]) - len(lines[end].lstrip()) > key_indent):
        end += 1
    pad = " " * (key_indent + 2)
    block = [pad + line if line.strip() else "\n" for line in serve_config.splitlines(True)]
    if block and not block[-1].endswith("\n"):
        block[-1] += "\n"
    return "".join(lines[:start + 1] + block + lines[end:])


def sync(check: bool, manifest: Path = RAYSERVICE, serve_file: Path = PROD_SERVE_CONFIG) -> bool:
    """Write (or with check, only compare) the RayService's serveConfigV2. Returns whether the
    manifest already agreed. Who calls it: `memos-cluster k8s`."""
    current = manifest.read_text()
    wanted = with_serve_config(current, serve_file.read_text())
    if current == wanted:
        return True
    if check:
        raise FailedPrecondition(f"{manifest} does not carry {serve_file}: run memos-cluster k8s")
    manifest.write_text(wanted)
    return False
