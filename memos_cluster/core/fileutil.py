"""Small file helpers."""
from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path | str, data: bytes) -> None:
    """Replace `path` with `data` so a crash leaves the old file or the new one, never half:
    written beside it, fsynced, renamed over it (the parent is created if missing).
    Who calls it: every small state file (layout, scheduler checkpoint, ingest checkpoint)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
