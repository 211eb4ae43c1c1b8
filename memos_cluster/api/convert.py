"""Protobuf <-> domain conversions: the one place that knows both. The gateway uses the `*_from_pb`
direction for requests and `*_to_pb` for replies; the client uses the opposite pairs."""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

from google.protobuf import json_format, struct_pb2

from memos_cluster.api.convert_structure import structure_from_pb, structure_to_pb
from memos_cluster.api import convert_lifecycle as lc
from memos_cluster.api.memos.v1 import memos_pb2 as pb
from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.tier_types import (
    AdapterRecord, BlockStats, GenerateCall, GenerateStats, MemoryTier, Migration, SamplingParams,
    ServedMemory,
    SchedulerStatus, TierStatus, TokenEvent, TrainingJob)
from memos_cluster.core.types import (
    Rebalance, ShardInfo, ShardsStatus, CubeSpec, CubeStats, ListQuery, MemoryItem, MemoryPage,
    MemoryUpdate, NewMemory, ScoreParts, SearchFilter, SearchHit, SearchMode, SearchQuery,
    TimeRange)

MODE_FROM_PB = {
    pb.SEARCH_MODE_HYBRID: SearchMode.HYBRID,
    pb.SEARCH_MODE_DENSE: SearchMode.DENSE,
    pb.SEARCH_MODE_BM25: SearchMode.BM25,
}
MODE_TO_PB = {mode: value for value, mode in MODE_FROM_PB.items()}
_MAX_EXACT_INT = 2**53  # larger integers do not survive a protobuf double


def _plain(value: Any) -> Any:
    """Struct numbers are doubles; give integral ones back as ints, as the caller wrote them."""
    if isinstance(value, float) and value.is_integer() and abs(value) < _MAX_EXACT_INT:
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def struct_to_dict(message: struct_pb2.Struct | struct_pb2.Value,
                   field: str = "metadata") -> Any:
    """Plain JSON of a Struct (or a Value); InvalidArgument for what JSON cannot hold (NaN,
    infinities), which protobuf numbers can (found by the fuzz test: it was INTERNAL)."""
    try:
        return _plain(json_format.MessageToDict(message))
    except (json_format.SerializeToJsonError, ValueError) as exc:
        raise InvalidArgument(f"{field} is not plain JSON: {exc}", field) from None


def dict_to_struct(value: Optional[dict[str, Any]], target: struct_pb2.Struct) -> None:
    if value:
        try:
            target.update(value)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"metadata is not plain JSON: {exc}", "metadata") from exc


def _opt_time(has: bool, value: int) -> Optional[int]:
    return int(value) if has else None


# ---- gateway direction: requests in, replies out ----------------------------------------------
def new_memory_from_pb(message: pb.NewMemory) -> NewMemory:
    return NewMemory(
        text=message.text, id=message.id or None,
        memory_type=message.memory_type or "fact",
        metadata=struct_to_dict(message.metadata),
        event_time_ms=_opt_time(message.has_event_time, message.event_time_ms),
        source=message.source, context=message.context,
        expires_at_ms=lc.opt(message, "expires_at_ms"),
        valid_from_ms=lc.opt(message, "valid_from_ms"))


def _range_from_pb(message: pb.TimeRange) -> TimeRange:
    return TimeRange(start_ms=_opt_time(message.has_start, message.start_ms),
                     end_ms=_opt_time(message.has_end, message.end_ms))


def filter_from_pb(message: pb.SearchFilter) -> SearchFilter:
    equals = []
    for key in sorted(message.metadata_equals):
        value = struct_to_dict(message.metadata_equals[key], "filter.metadata_equals")
        equals.append((key, value))
    return SearchFilter(
        memory_types=tuple(message.memory_types), sources=tuple(message.sources),
        metadata_equals=tuple(equals), event_time=_range_from_pb(message.event_time),
        created_at=_range_from_pb(message.created_at), states=tuple(message.states),
        as_of_ms=lc.opt(message, "as_of_ms"))


def search_from_pb(message: pb.SearchRequest) -> SearchQuery:
    """Unset top_k and mode stay 0 / None: MemoryService applies the configured defaults."""
    if message.mode not in MODE_FROM_PB and message.mode != pb.SEARCH_MODE_UNSPECIFIED:
        raise InvalidArgument(f"mode {message.mode} is not a known SearchMode", "mode")
    return SearchQuery(
        cube_ids=tuple(message.cube_ids), query=message.query,
        top_k=message.top_k, mode=MODE_FROM_PB.get(message.mode),
        filter=filter_from_pb(message.filter),
        reference_time_ms=_opt_time(message.has_reference_time, message.reference_time_ms),
        explain=message.explain)


def list_from_pb(message: pb.ListMemoriesRequest) -> ListQuery:
    """The page token is the offset in decimal; anything else is not a token we gave out."""
    token = message.page_token
    if token and not (token.isascii() and token.isdigit() and len(token) <= 12):
        raise InvalidArgument("page_token must be one a previous page returned", "page_token")
    return ListQuery(cube_id=message.cube_id, filter=filter_from_pb(message.filter),
                     text_contains=message.text_contains, page_size=message.page_size,
                     offset=int(token or 0))


def list_to_pb(query: ListQuery) -> pb.ListMemoriesRequest:
    request = pb.ListMemoriesRequest(cube_id=query.cube_id, text_contains=query.text_contains,
                                     page_size=query.page_size,
                                     page_token=str(query.offset) if query.offset else "")
    filter_to_pb(query.filter, request.filter)
    return request


def page_to_pb(page: MemoryPage) -> pb.ListMemoriesResponse:
    return pb.ListMemoriesResponse(
        memories=[memory_to_pb(m) for m in page.items], total=page.total,
        next_page_token="" if page.next_offset is None else str(page.next_offset))


def page_from_pb(message: pb.ListMemoriesResponse) -> MemoryPage:
    token = message.next_page_token
    return MemoryPage(items=tuple(memory_from_pb(m) for m in message.memories),
                      next_offset=int(token) if token else None, total=message.total)


def update_from_pb(message: pb.UpdateMemoryRequest) -> MemoryUpdate:
    return MemoryUpdate(
        cube_id=message.cube_id, id=message.id, text=message.text,
        metadata=struct_to_dict(message.metadata) if message.replace_metadata else None,
        memory_type=message.memory_type or None,
        event_time_ms=_opt_time(message.has_event_time, message.event_time_ms),
        expected_version=message.expected_version or None,
        expires_at_ms=lc.opt(message, "expires_at_ms"))


def cube_from_pb(message: pb.CreateCubeRequest) -> CubeSpec:
    return CubeSpec(cube_id=message.cube_id, description=message.description,
                    metadata=struct_to_dict(message.metadata),
                    default_ttl_ms=message.default_ttl_ms)


def memory_to_pb(item: MemoryItem, target: Optional[pb.Memory] = None) -> pb.Memory:
    message = pb.Memory() if target is None else target
    message.id, message.cube_id, message.text = item.id, item.cube_id, item.text
    message.memory_type, message.source, message.version = (
        item.memory_type, item.source, item.version)
    message.created_at_ms, message.updated_at_ms = item.created_at_ms, item.updated_at_ms
    message.has_event_time = item.event_time_ms is not None
    message.event_time_ms = item.event_time_ms or 0
    message.context = item.context
    dict_to_struct(item.metadata, message.metadata)
    structure_to_pb(item.structure, message.structure)
    lc.lifecycle_to_pb(item, message)
    return message


def cube_to_pb(spec: CubeSpec, target: Optional[pb.Cube] = None) -> pb.Cube:
    message = pb.Cube() if target is None else target
    message.cube_id, message.description = spec.cube_id, spec.description
    message.created_at_ms = spec.created_at_ms
    message.default_ttl_ms = spec.default_ttl_ms
    dict_to_struct(spec.metadata, message.metadata)
    return message


def stats_to_pb(stats: CubeStats) -> pb.CubeStats:
    message = pb.CubeStats(num_memories=stats.num_memories,
                           num_history_versions=stats.num_history_versions,
                           shard_id=stats.shard_id)
    cube_to_pb(stats.cube, message.cube)
    return message


def hit_to_pb(hit: SearchHit, target: pb.SearchHit) -> None:
    memory_to_pb(hit.item, target.memory)
    target.score, target.tier = hit.score, hit.tier
    target.adapter_version = hit.adapter_version
    if hit.explain is not None:  # ScoreParts' fields are the message's, name for name
        target.explain.CopyFrom(pb.ScoreParts(**dataclasses.asdict(hit.explain)))


# ---- client direction: requests out, replies in -----------------------------------------------
def new_memory_to_pb(item: NewMemory, target: pb.NewMemory) -> None:
    target.id, target.text = item.id or "", item.text
    target.memory_type, target.source = item.memory_type, item.source
    target.has_event_time = item.event_time_ms is not None
    target.event_time_ms = item.event_time_ms or 0
    target.context = item.context
    lc.set_opt(target, "expires_at_ms", item.expires_at_ms)
    lc.set_opt(target, "valid_from_ms", item.valid_from_ms)
    dict_to_struct(item.metadata, target.metadata)


def create_cube_to_pb(spec: CubeSpec) -> pb.CreateCubeRequest:
    request = pb.CreateCubeRequest(cube_id=spec.cube_id, description=spec.description,
                                   default_ttl_ms=spec.default_ttl_ms)
    dict_to_struct(spec.metadata, request.metadata)
    return request


def _range_to_pb(value: TimeRange, target: pb.TimeRange) -> None:
    target.has_start = value.start_ms is not None
    target.start_ms = value.start_ms or 0
    target.has_end = value.end_ms is not None
    target.end_ms = value.end_ms or 0


def filter_to_pb(value: SearchFilter, target: pb.SearchFilter) -> None:
    target.memory_types.extend(value.memory_types)
    target.sources.extend(value.sources)
    for key, scalar in value.metadata_equals:
        json_format.ParseDict(scalar, target.metadata_equals[key])
    _range_to_pb(value.event_time, target.event_time)
    _range_to_pb(value.created_at, target.created_at)
    target.states.extend(value.states)
    lc.set_opt(target, "as_of_ms", value.as_of_ms)


def search_to_pb(query: SearchQuery) -> pb.SearchRequest:
    """top_k 0 and mode None travel as unset: the server applies its defaults."""
    request = pb.SearchRequest(cube_ids=list(query.cube_ids), query=query.query,
                               top_k=query.top_k,
                               mode=MODE_TO_PB.get(query.mode, pb.SEARCH_MODE_UNSPECIFIED),
                               has_reference_time=query.reference_time_ms is not None,
                               reference_time_ms=query.reference_time_ms or 0,
                               explain=query.explain)
    filter_to_pb(query.filter, request.filter)
    return request


def update_to_pb(update: MemoryUpdate) -> pb.UpdateMemoryRequest:
    request = pb.UpdateMemoryRequest(
        cube_id=update.cube_id, id=update.id, text=update.text,
        memory_type=update.memory_type or "", replace_metadata=update.metadata is not None,
        has_event_time=update.event_time_ms is not None,
        event_time_ms=update.event_time_ms or 0, expected_version=update.expected_version or 0)
    lc.set_opt(request, "expires_at_ms", update.expires_at_ms)
    dict_to_struct(update.metadata, request.metadata)
    return request


def memory_from_pb(message: pb.Memory) -> MemoryItem:
    return MemoryItem(
        id=message.id, cube_id=message.cube_id, text=message.text,
        memory_type=message.memory_type, metadata=struct_to_dict(message.metadata),
        created_at_ms=message.created_at_ms, updated_at_ms=message.updated_at_ms,
        event_time_ms=_opt_time(message.has_event_time, message.event_time_ms),
        source=message.source, version=message.version, context=message.context,
        structure=structure_from_pb(message.structure), **lc.lifecycle_from_pb(message))


def cube_spec_from_pb(message: pb.Cube) -> CubeSpec:
    return CubeSpec(cube_id=message.cube_id, description=message.description,
                    metadata=struct_to_dict(message.metadata),
                    created_at_ms=message.created_at_ms, default_ttl_ms=message.default_ttl_ms)


def stats_from_pb(message: pb.CubeStats) -> CubeStats:
    return CubeStats(cube=cube_spec_from_pb(message.cube), num_memories=message.num_memories,
                     num_history_versions=message.num_history_versions,
                     shard_id=message.shard_id)


def hit_from_pb(message: pb.SearchHit) -> SearchHit:
    parts = None
    if message.HasField("explain"):
        parts = ScoreParts(**{f.name: getattr(message.explain, f.name)
                              for f in dataclasses.fields(ScoreParts)})
    return SearchHit(item=memory_from_pb(message.memory), score=message.score, tier=message.tier,
                     adapter_version=message.adapter_version, explain=parts)


# ---- activation memory ------------------------------------------------------------------------
def generate_from_pb(message: pb.GenerateRequest) -> GenerateCall:
    """Unset numbers stay 0: ActivationService applies the configured defaults."""
    return GenerateCall(
        cube_ids=tuple(message.cube_ids), query=message.query,
        sampling=SamplingParams(max_new_tokens=message.max_new_tokens,
                                temperature=message.temperature, top_p=message.top_p,
                                seed=message.seed),
        use_activation_memory=message.use_activation_memory,
        use_retrieved_memories=message.use_retrieved_memories,
        retrieval_top_k=message.retrieval_top_k,
        use_parametric_memory=message.use_parametric_memory, memory_mode=message.memory_mode,
        as_of_ms=lc.opt(message, "as_of_ms"))


def generate_to_pb(call: GenerateCall) -> pb.GenerateRequest:
    s = call.sampling
    request = pb.GenerateRequest(
        cube_ids=list(call.cube_ids), query=call.query, max_new_tokens=s.max_new_tokens,
        temperature=s.temperature, top_p=s.top_p, seed=s.seed,
        use_activation_memory=call.use_activation_memory,
        use_retrieved_memories=call.use_retrieved_memories,
        retrieval_top_k=call.retrieval_top_k, use_parametric_memory=call.use_parametric_memory,
        memory_mode=call.memory_mode)
    lc.set_opt(request, "as_of_ms", call.as_of_ms)
    return request


def generate_event_to_pb(event: TokenEvent | GenerateStats) -> pb.GenerateResponse:
    if isinstance(event, TokenEvent):
        return pb.GenerateResponse(token=token_to_pb(event))
    return pb.GenerateResponse(stats=generate_stats_to_pb(event))


def token_to_pb(event: TokenEvent) -> pb.GenerateToken:
    return pb.GenerateToken(token_id=event.token_id, text=event.text)


def generate_stats_to_pb(event: GenerateStats) -> pb.GenerateStats:
    return pb.GenerateStats(
        ttft_ms=event.ttft_ms, total_ms=event.total_ms, prompt_tokens=event.prompt_tokens,
        prefill_tokens=event.prefill_tokens, prefill_tokens_saved=event.prefill_tokens_saved,
        caches_used=list(event.caches_used), num_generated=event.num_generated,
        finish_reason=event.finish_reason, adapters_used=list(event.adapters_used),
        retrieved_from_activation=event.retrieved_from_activation,
        memories=[pb.ServedMemory(cube_id=m.cube_id, memory_id=m.memory_id, version=m.version,
                                  tier=m.tier) for m in event.memories])


def generate_event_from_pb(message: pb.GenerateResponse) -> TokenEvent | GenerateStats:
    if message.WhichOneof("event") == "token":
        return TokenEvent(message.token.token_id, message.token.text)
    return generate_stats_from_pb(message.stats)


def generate_stats_from_pb(s: pb.GenerateStats) -> GenerateStats:
    return GenerateStats(ttft_ms=s.ttft_ms, total_ms=s.total_ms, prompt_tokens=s.prompt_tokens,
                         prefill_tokens=s.prefill_tokens,
                         prefill_tokens_saved=s.prefill_tokens_saved,
                         caches_used=tuple(s.caches_used), num_generated=s.num_generated,
                         finish_reason=s.finish_reason, adapters_used=tuple(s.adapters_used),
                         retrieved_from_activation=s.retrieved_from_activation,
                         memories=tuple(ServedMemory(m.cube_id, m.memory_id, m.version, m.tier)
                                        for m in s.memories))


def block_stats_to_pb(stats: BlockStats) -> pb.ActivateMemoriesResponse:
    return pb.ActivateMemoriesResponse(num_tokens=stats.num_tokens,
                                       prefill_tokens=stats.prefill_tokens,
                                       reused_tokens=stats.reused_tokens, cache_id=stats.cache_id)


def block_stats_from_pb(message: pb.ActivateMemoriesResponse) -> BlockStats:
    return BlockStats(num_tokens=message.num_tokens, prefill_tokens=message.prefill_tokens,
                      reused_tokens=message.reused_tokens, cache_id=message.cache_id)


# ---- parametric memory ------------------------------------------------------------------------
def job_to_pb(job: TrainingJob) -> pb.TrainingJob:
    return pb.TrainingJob(job_id=job.job_id, cube_id=job.cube_id, status=job.status,
                          step=job.step, steps=job.steps, loss=job.loss, error=job.error,
                          version=job.version)


def job_from_pb(message: pb.TrainingJob) -> TrainingJob:
    return TrainingJob(job_id=message.job_id, cube_id=message.cube_id, status=message.status,
                       step=message.step, steps=message.steps, loss=message.loss,
                       error=message.error, version=message.version)


def adapter_to_pb(record: AdapterRecord, current: bool) -> pb.Adapter:
    return pb.Adapter(cube_id=record.cube_id, version=record.version, base=record.base,
                      memory_ids=[m for m, _ in record.memories],
                      memory_versions=[n for _, n in record.memories],
                      metrics={k: float(x) for k, x in record.metrics.items()},
                      stale=record.stale, created_at_ms=record.created_at_ms, current=current,
                      questions=list(record.questions), rejected=record.rejected)


def adapter_from_pb(message: pb.Adapter) -> AdapterRecord:
    """The client's view: lineage and metrics (the LoRA spec and file names stay server-side)."""
    return AdapterRecord(cube_id=message.cube_id, version=message.version,
                         base=dict(message.base),
                         memories=tuple(zip(message.memory_ids, message.memory_versions)),
                         spec={}, metrics=dict(message.metrics),
                         created_at_ms=message.created_at_ms, stale=message.stale,
                         questions=tuple(message.questions), rejected=message.rejected)


# ---- the scheduler ----------------------------------------------------------------------------
def tier_status_to_pb(status: TierStatus) -> pb.GetTierStatusResponse:
    return pb.GetTierStatusResponse(
        memories=[pb.MemoryTierStatus(memory_id=m.memory_id, version=m.version,
                                      frequency=m.frequency, tiers=list(m.tiers))
                  for m in status.memories],
        migrations=[pb.Migration(time_s=x.time_s, cube_id=x.cube_id, memory_id=x.memory_id,
                                 action=x.action, detail=x.detail) for x in status.migrations])


def tier_status_from_pb(message: pb.GetTierStatusResponse) -> TierStatus:
    return TierStatus(
        tuple(MemoryTier(m.memory_id, m.version, m.frequency, tuple(m.tiers))
              for m in message.memories),
        tuple(Migration(x.time_s, x.cube_id, x.memory_id, x.action, x.detail)
              for x in message.migrations))


def scheduler_status_to_pb(status: SchedulerStatus) -> pb.ControlSchedulerResponse:
    return pb.ControlSchedulerResponse(**dataclasses.asdict(status))


def scheduler_status_from_pb(message: pb.ControlSchedulerResponse) -> SchedulerStatus:
    return SchedulerStatus(message.paused, message.events, message.dropped, message.tracked,
                           message.promoted, message.demoted, message.consolidations,
                           message.retired, message.expired, message.expired_total)


# ---- the shard layout -------------------------------------------------------------------------
def shards_status_to_pb(status: ShardsStatus) -> pb.ListShardsResponse:
    return pb.ListShardsResponse(
        epoch=status.epoch, pending_moves=status.pending_moves,
        shards=[pb.ShardInfo(shard_id=s.shard_id, node_id=s.node_id, in_ring=s.in_ring,
                             ok=s.is_ok, detail=s.detail,
                             cubes=[pb.ShardCube(cube_id=c, num_memories=n)
                                    for c, n in s.cube_items.items()])
                for s in status.shards],
        rebalance=pb.RebalanceProgress(**dataclasses.asdict(status.rebalance)))


def shards_status_from_pb(message: pb.ListShardsResponse) -> ShardsStatus:
    r = message.rebalance
    return ShardsStatus(
        message.epoch,
        tuple(ShardInfo(s.shard_id, s.node_id, s.in_ring,
                        {c.cube_id: c.num_memories for c in s.cubes}, s.ok, s.detail)
              for s in message.shards),
        message.pending_moves,
        Rebalance(r.state, r.moves_total, r.moves_done, r.current, r.error, r.started_s,
                  r.finished_s))
