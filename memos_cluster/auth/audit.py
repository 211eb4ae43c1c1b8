"""The audit log: one JSON line per admin action or permission change, with who and when.

Appended and fsynced before the change is made: by the registry before it writes the new state,
by the gateway before it runs the admin action (after the request was validated and
authorized). So an acknowledged change is always in the log.
Who writes it: the auth registry (users, keys, grants) and, through the auth actor, the
gateway (cube deletion, resharding, scheduler control, adapter deletion).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator


@dataclass(frozen=True)
class AuditRecord:
    time_s: float  # Unix epoch seconds
    actor: str  # the user id that did it
    action: str  # e.g. "create_user", "share_cube", "delete_cube", "reshard"
    target: str  # what it was done to: a user, key, cube or "cluster"
    detail: str = ""


class AuditLog:
    def __init__(self, path: Path):
        self.path = Path(path)

    def append(self, record: AuditRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(asdict(record), ensure_ascii=False, sort_keys=True) + "\n"
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(line)
            out.flush()
            os.fsync(out.fileno())

    def read(self) -> Iterator[AuditRecord]:
        """Every record, oldest first (`memos-cluster audit` and tests)."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield AuditRecord(**json.loads(line))
