"""`memos-cluster entities` and `memos-cluster entity`: a cube's entity graph (what the memory
reader found in its memories) through a running gateway, with MemosClient's ListEntities and
GetEntity. `entities` is a table of the cube's entities, most mentioned first; `entity` one
entity with its aliases, relations, neighbours and the memories that mention it."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional, Sequence

from memos_cluster.cli.common import client_for
from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import InvalidArgument

PAGE_SIZE = 100  # entities per ListEntities call while filling --limit
CELL_CHARS = 40  # a table cell longer than this is cut
TEXT_CHARS = 100  # a memory's text in `entity`


def add_entity_commands(sub) -> tuple:
    """Who calls it: `memos_cluster.cli.main.build_parser`. Returns the two parsers (main
    gives them --address and the TLS options)."""
    entities = sub.add_parser("entities", help="a cube's entities: name, label, mentions, "
                                               "aliases")
    entities.add_argument("--cube", required=True)
    entities.add_argument("--name", default="",
                          help="only entities whose name or an alias contains this "
                               "(case-insensitive)")
    entities.add_argument("--label", default="", help="only this label (PERSON, ORG, GPE, ...)")
    entities.add_argument("--limit", type=int, default=50, help="at most this many (0: all)")
    entity = sub.add_parser("entity", help="one entity: aliases, relations, neighbours and the "
                                           "memories that mention it")
    entity.add_argument("ref", metavar="NAME_OR_ID", help="the entity's id, name or an alias")
    entity.add_argument("--cube", required=True)
    return entities, entity


def cut(text: str, width: int = CELL_CHARS) -> str:
    """`text` on one line, at most `width` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 3] + "..."


def table(headers: Sequence[str], rows: Sequence[Sequence[object]],
          numeric: Sequence[int] = ()) -> list[str]:
    """Rows under headers in aligned columns, the columns in `numeric` right-aligned; every
    cell on one line, cut at CELL_CHARS but the last column's (the caller cuts those)."""
    last = len(headers) - 1
    cells = [[cut(str(c)) if i < last else " ".join(str(c).split()) for i, c in enumerate(row)]
             for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if i in numeric else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    return [line(headers)] + [line(r) for r in cells]


def date_of(time_ms: Optional[int]) -> str:
    """An event time as a UTC date, "-" when the memory has none."""
    if time_ms is None:
        return "-"
    return datetime.fromtimestamp(time_ms / 1000, timezone.utc).strftime("%Y-%m-%d")


def list_entities(client, cube_id: str, name: str, label: str, limit: int) -> tuple[list, int]:
    """Up to `limit` entities (0: all), page after page; (entities, total matching)."""
    if limit < 0:
        raise InvalidArgument("--limit must be 0 (all) or more", "limit")
    found: list = []
    offset: Optional[int] = 0
    total = 0
    while offset is not None and (limit == 0 or len(found) < limit):
        size = PAGE_SIZE if limit == 0 else min(PAGE_SIZE, limit - len(found))
        page = client.list_entities(cube_id, name_contains=name, label=label, page_size=size,
                                    offset=offset)
        found.extend(page.entities)
        total, offset = page.total, page.next_offset
        if not page.entities:
            break
    return found[:limit] if limit else found, total


def cmd_entities(args, config: MemosConfig) -> int:
    """Who calls it: `memos-cluster entities`."""
    entities, total = list_entities(client_for(args, config), args.cube, args.name,
                                    args.label, args.limit)
    if entities:
        rows = [(e.name, e.label, e.num_mentions, cut(", ".join(e.aliases), TEXT_CHARS))
                for e in entities]
        for line in table(("name", "label", "mentions", "aliases"), rows, numeric=(2,)):
            print(line)
    matching = " matching" if args.name or args.label else ""
    print(f"{len(entities)} of {total}{matching} entities of cube {args.cube}")
    return 0


def cmd_entity(args, config: MemosConfig) -> int:
    """Who calls it: `memos-cluster entity`. The gateway resolves NAME_OR_ID (an id, a name or
    an alias); NotFound when none matches."""
    detail = client_for(args, config).get_entity(args.cube, args.ref)
    entity = detail.entity
    print(f"{entity.name} ({entity.label}, id {entity.entity_id}): {entity.num_mentions} "
          f"mentions in cube {entity.cube_id}")
    print("aliases: " + (", ".join(entity.aliases) if entity.aliases else "-"))
    _section("relations", ("subject", "predicate", "object", "memory", "date"),
             [(r.subject, r.predicate, r.object, r.memory_id, date_of(r.time_ms))
              for r in detail.relations])
    _section("neighbours", ("name", "label", "shared memories"),
             [(n.entity.name, n.entity.label, n.num_shared) for n in detail.neighbours],
             numeric=(2,))
    _section("memories", ("id", "date", "text"),
             [(m.id, date_of(m.event_time_ms), cut(m.text, TEXT_CHARS))
              for m in detail.memories])
    return 0


def _section(title: str, headers: Sequence[str], rows: list, numeric: Sequence[int] = ()) -> None:
    print(f"\n{title} ({len(rows)}):" if rows else f"\n{title}: none")
    for line in table(headers, rows, numeric) if rows else ():
        print("  " + line)
