"""Structured filters -> a Milvus boolean expression.

Only field names chosen here and metadata keys that passed `METADATA_KEY_PATTERN` ever appear in
the expression template; every user-supplied value is held apart as a parameter (`{p0}`) and only
enters the text through `encode_literal`, which emits a well-formed literal or raises. The encoding
is needed because milvus-lite 2.5 does not serve `filter_params` templates (a templated query
failed with UNKNOWN after 75 retries); the same encoded text is valid for a Milvus server, so
there is one code path. A unit test checks, against the engine, that any string encodes to a
literal matching exactly the rows holding that string.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.lifecycle import ACTIVE, EXPIRED, READ_STATES, SUPERSEDED
from memos_cluster.core.types import SearchFilter, TimeRange
from memos_cluster.core.validation import METADATA_KEY_PATTERN


@dataclass
class Expr:
    """An expression under construction: clauses joined by `and`, values kept apart."""

    clauses: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def param(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return "{" + name + "}"

    def add(self, clause: str) -> None:
        self.clauses.append(clause)

    @property
    def template(self) -> str:
        return " and ".join(f"({c})" for c in self.clauses)

    def render(self) -> str:
        """The expression with every parameter encoded as a literal."""
        return _PLACEHOLDER.sub(lambda m: encode_literal(self.params[m.group(1)]), self.template)


_PLACEHOLDER = re.compile(r"\{(p\d+)\}")
# The escapes Milvus's expression parser decodes inside a double-quoted string (milvus-lite 2.5
# decodes no others: "\\n" stays a backslash and an n; a raw tab is read as a tab, a raw line
# break ends the expression, so line breaks cannot be filter values at all).
_STRING_ESCAPES = {"\\": "\\\\", '"': '\\"'}


def encode_literal(value: Any) -> str:
    """A Milvus literal for a str, int, float, bool or a list of those; anything else raises."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument("filter values must be finite numbers", "filter")
        return repr(float(value))
    if isinstance(value, str):
        if any(ord(ch) < 0x20 and ch != "\t" for ch in value):
            raise InvalidArgument("filter values must not contain line breaks or control "
                                  "characters", "filter")
        return '"' + "".join(_STRING_ESCAPES.get(ch, ch) for ch in value) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(encode_literal(v) for v in value) + "]"
    raise InvalidArgument(f"filter values of type {type(value).__name__} are not supported",
                          "filter")


def _time_clauses(expr: Expr, column: str, value: TimeRange) -> None:
    if value.start_ms is not None:
        expr.add(f"{column} >= {expr.param(int(value.start_ms))}")
    if value.end_ms is not None:
        expr.add(f"{column} < {expr.param(int(value.end_ms))}")


def scope_expr(cube_ids: list[str] | tuple[str, ...]) -> Expr:
    """The cube scope every query starts from (cube_id is the partition key or an indexed
    field, so Milvus prunes either way)."""
    expr = Expr()
    if len(cube_ids) == 1:
        expr.add(f"cube_id == {expr.param(cube_ids[0])}")
    else:
        expr.add(f"cube_id in {expr.param(list(cube_ids))}")
    return expr


def state_clause(expr: Expr, states: Sequence[str], now_ms: int) -> str:
    """One clause matching memories in any of these read states (core/lifecycle.READ_STATES):
    expired is a view, active with `expires_at_ms` at or before now."""
    parts = []
    for state in dict.fromkeys(states):
        if state not in READ_STATES:  # validated upstream; a bad state is a bug here
            raise InvalidArgument(f"unknown memory state {state!r}", "filter.states")
        stored = f"state == {expr.param(ACTIVE if state == EXPIRED else state)}"
        if state == ACTIVE:
            stored += f" and expires_at_ms > {expr.param(int(now_ms))}"
        elif state == EXPIRED:
            stored += f" and expires_at_ms <= {expr.param(int(now_ms))}"
        parts.append(f"({stored})")
    return " or ".join(parts)


def lifecycle_clauses(expr: Expr, flt: SearchFilter, now_ms: int) -> None:
    """Which memories a read sees: active ones by default; `states` names others; `as_of_ms`
    keeps those valid then (superseded ones included unless `states` says otherwise), never
    archived or expired ones unless named."""
    states = flt.states or ((ACTIVE, SUPERSEDED) if flt.as_of_ms is not None else (ACTIVE,))
    expr.add(state_clause(expr, states, now_ms))
    if flt.as_of_ms is not None:
        expr.add(f"valid_from_ms <= {expr.param(int(flt.as_of_ms))}")
        expr.add(f"valid_to_ms > {expr.param(int(flt.as_of_ms))}")


def build_search_expr(cube_ids: list[str] | tuple[str, ...], flt: SearchFilter,
                      event_time_none: Optional[int] = None,
                      now_ms: Optional[int] = None) -> Expr:
    """Who calls it: the plaintext tier, for every search and listing. Cube scope first, then
    the lifecycle (`now_ms`: the shard's clock; None leaves states unfiltered), then the
    filter. `event_time_none`: the value that stands for "no event time" where the engine has
    no NULL (schema.EngineProfile); such memories match no event-time range."""
    expr = scope_expr(cube_ids)
    if now_ms is not None:
        lifecycle_clauses(expr, flt, now_ms)
    if flt.memory_types:
        expr.add(f"memory_type in {expr.param(list(flt.memory_types))}")
    if flt.sources:
        expr.add(f"source in {expr.param(list(flt.sources))}")
    for key, value in flt.metadata_equals:
        if not METADATA_KEY_PATTERN.match(key):  # validated upstream; a bad key is a bug here
            raise InvalidArgument(f"metadata filter key {key!r} is malformed", "filter")
        expr.add(f'metadata["{key}"] == {expr.param(value)}')
    # A memory without an event time matches no event-time range: NULL compares false; the
    # engine's stand-in for NULL is excluded explicitly.
    has_range = flt.event_time.start_ms is not None or flt.event_time.end_ms is not None
    if has_range and event_time_none is not None:
        expr.add(f"event_time_ms != {expr.param(int(event_time_none))}")
    _time_clauses(expr, "event_time_ms", flt.event_time)
    _time_clauses(expr, "created_at_ms", flt.created_at)
    return expr
