"""`memos-cluster feedback` (judge a memory) and the lifecycle options of `memos-cluster search`
(`--as-of`, `--state`), through a running gateway with MemosClient (docs/lifecycle.md)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from memos_cluster.cli.common import client_for
from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.lifecycle import FEEDBACK_KINDS, READ_STATES
from memos_cluster.core.types import SearchFilter


def add_feedback_command(sub):
    """Who calls it: `memos_cluster.cli.main.build_parser`; returns the parser (main gives it
    --address and the TLS options)."""
    feedback = sub.add_parser("feedback", help="judge a memory: wrong (archive it), outdated "
                                               "(supersede it), useful (make it hotter)")
    feedback.add_argument("memory_id")
    feedback.add_argument("kind", choices=FEEDBACK_KINDS)
    feedback.add_argument("--cube", required=True)
    feedback.add_argument("--text", default="", help="outdated: what holds now, stored as the "
                                                     "memory's successor; else a note")
    return feedback


def add_search_lifecycle_options(search) -> None:
    search.add_argument("--as-of", help="only memories valid then: YYYY-MM-DD (UTC) or epoch "
                                        "milliseconds")
    search.add_argument("--state", action="append", choices=READ_STATES,
                        help="read memories in this state (repeatable; default: active)")


def search_filter(args) -> SearchFilter:
    return SearchFilter(states=tuple(args.state or ()), as_of_ms=parse_time(args.as_of))


def parse_time(text: Optional[str]) -> Optional[int]:
    """A date (YYYY-MM-DD, or an ISO time) as epoch ms at UTC, or epoch ms as digits."""
    if not text:
        return None
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(f"--as-of {text!r} is not YYYY-MM-DD or epoch ms",
                              "as_of") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def cmd_feedback(args, config: MemosConfig) -> int:
    result = client_for(args, config).feedback(args.cube, args.memory_id, args.kind, args.text)
    memory = result.memory
    line = f"{memory.id}: {memory.state}"
    if memory.state_reason:
        line += f" ({memory.state_reason})"
    print(line)
    if result.successor is not None:
        print(f"successor {result.successor.id}: {result.successor.text}")
    for decision in result.superseded:
        print(f"superseded {decision.old_id}: {decision.reason}")
    return 0
