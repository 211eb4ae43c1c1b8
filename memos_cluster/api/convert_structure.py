"""Protobuf <-> domain conversions of a memory's structure (what the memory reader found: dates,
entities, relations) and of the entity graph's views (ListEntities, GetEntity). `convert.py`
carries a Memory's structure through `structure_to_pb` / `structure_from_pb`; the entity
operations' codecs (`rpcs.py`) use the rest, with `convert.memory_*_pb` for GetEntity's
memories."""
from __future__ import annotations

from typing import Optional

from memos_cluster.api.memos.v1 import memos_pb2 as pb
from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.structure import (
    EMPTY_STRUCTURE, Entity, EntityMention, EntityNeighbour, EntityPage, EntityQuery,
    EntityRelation, MemoryStructure, Relation, TimeMention)


# ---- a memory's structure ---------------------------------------------------------------------
def structure_to_pb(structure: MemoryStructure, target: pb.MemoryStructure) -> None:
    for t in structure.times:
        target.times.add(span=t.span, start_char=t.start_char, end_char=t.end_char,
                         resolved=t.is_resolved, start_ms=t.start_ms or 0, end_ms=t.end_ms or 0,
                         granularity=t.granularity, label=t.label())
    for e in structure.entities:
        target.entities.add(span=e.span, start_char=e.start_char, end_char=e.end_char,
                            name=e.name, label=e.label, entity_id=e.entity_id)
    for r in structure.relations:
        target.relations.add(subject=r.subject, predicate=r.predicate, object=r.object)
    target.reader = structure.reader


def _time_from_pb(m: pb.TimeMention) -> TimeMention:
    """`label` is derived (TimeMention.label()), so it is not read back."""
    return TimeMention(m.span, m.start_char, m.end_char,
                       m.start_ms if m.resolved else None, m.end_ms if m.resolved else None,
                       m.granularity if m.resolved else "")


def structure_from_pb(message: pb.MemoryStructure) -> MemoryStructure:
    if not (message.times or message.entities or message.relations or message.reader):
        return EMPTY_STRUCTURE
    return MemoryStructure(
        times=tuple(_time_from_pb(t) for t in message.times),
        entities=tuple(EntityMention(e.span, e.start_char, e.end_char, e.name, e.label,
                                     e.entity_id) for e in message.entities),
        relations=tuple(Relation(r.subject, r.predicate, r.object) for r in message.relations),
        reader=message.reader)


# ---- entities ---------------------------------------------------------------------------------
def entity_to_pb(entity: Entity, target: Optional[pb.Entity] = None) -> pb.Entity:
    message = pb.Entity() if target is None else target
    message.entity_id, message.cube_id = entity.entity_id, entity.cube_id
    message.name, message.label = entity.name, entity.label
    message.aliases.extend(entity.aliases)
    message.num_mentions = entity.num_mentions
    return message


def entity_from_pb(message: pb.Entity) -> Entity:
    return Entity(entity_id=message.entity_id, cube_id=message.cube_id, name=message.name,
                  label=message.label, aliases=tuple(message.aliases),
                  num_mentions=message.num_mentions)


def entity_query_from_pb(message: pb.ListEntitiesRequest) -> EntityQuery:
    """The page token is the offset in decimal, as ListMemories' is."""
    token = message.page_token
    if token and not (token.isascii() and token.isdigit() and len(token) <= 12):
        raise InvalidArgument("page_token must be one a previous page returned", "page_token")
    return EntityQuery(cube_id=message.cube_id, name_contains=message.name_contains,
                       label=message.label, page_size=message.page_size,
                       offset=int(token or 0))


def entity_query_to_pb(query: EntityQuery) -> pb.ListEntitiesRequest:
    return pb.ListEntitiesRequest(cube_id=query.cube_id, name_contains=query.name_contains,
                                  label=query.label, page_size=query.page_size,
                                  page_token=str(query.offset) if query.offset else "")


def entity_page_to_pb(page: EntityPage) -> pb.ListEntitiesResponse:
    return pb.ListEntitiesResponse(
        entities=[entity_to_pb(e) for e in page.entities], total=page.total,
        next_page_token="" if page.next_offset is None else str(page.next_offset))


def entity_page_from_pb(message: pb.ListEntitiesResponse) -> EntityPage:
    token = message.next_page_token
    return EntityPage(entities=tuple(entity_from_pb(e) for e in message.entities),
                      next_offset=int(token) if token else None, total=message.total)


def relation_to_pb(relation: EntityRelation, target: pb.EntityRelation) -> None:
    target.subject, target.predicate, target.object = (
        relation.subject, relation.predicate, relation.object)
    target.memory_id = relation.memory_id
    target.has_time = relation.time_ms is not None
    target.time_ms = relation.time_ms or 0


def relation_from_pb(message: pb.EntityRelation) -> EntityRelation:
    return EntityRelation(message.subject, message.predicate, message.object, message.memory_id,
                          message.time_ms if message.has_time else None)


def neighbour_to_pb(neighbour: EntityNeighbour, target: pb.EntityNeighbour) -> None:
    entity_to_pb(neighbour.entity, target.entity)
    target.num_shared = neighbour.num_shared


def neighbour_from_pb(message: pb.EntityNeighbour) -> EntityNeighbour:
    return EntityNeighbour(entity_from_pb(message.entity), message.num_shared)
