"""GetGatewayStats between its core form (core/request_stats.py) and protobuf."""
from __future__ import annotations

from memos_cluster.api.memos.v1 import memos_pb2 as pb
from memos_cluster.core.request_stats import GatewayStats, OperationStats, RateSample, RecentError


def stats_to_pb(stats: GatewayStats) -> pb.GetGatewayStatsResponse:
    return pb.GetGatewayStatsResponse(
        window_s=stats.window_s,
        operations=[pb.OperationStats(rpc=o.rpc, transport=o.transport, requests=o.requests,
                                      errors=o.errors, p50_ms=o.p50_ms, p95_ms=o.p95_ms)
                    for o in stats.operations],
        rates=[pb.RateSample(time_s=r.time_s, transport=r.transport,
                             requests_per_s=r.requests_per_s) for r in stats.rates],
        errors=[pb.RecentError(time_s=e.time_s, rpc=e.rpc, transport=e.transport, code=e.code)
                for e in stats.errors])


def stats_from_pb(message: pb.GetGatewayStatsResponse) -> GatewayStats:
    return GatewayStats(
        window_s=message.window_s,
        operations=tuple(OperationStats(o.rpc, o.transport, o.requests, o.errors, o.p50_ms,
                                        o.p95_ms) for o in message.operations),
        rates=tuple(RateSample(r.time_s, r.transport, r.requests_per_s) for r in message.rates),
        errors=tuple(RecentError(e.time_s, e.rpc, e.transport, e.code) for e in message.errors))
