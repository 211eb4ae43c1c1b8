"""The protobuf form of every operation in the table (`core/operations.py`): how a request message
becomes the operation's arguments and its result the response, at the gateway, and the reverse at
the client. With the table this is all a front needs: the gateway's gRPC methods and the
client's gRPC transport are generated from it, one generic path each.

The request and response classes come from the service descriptor (`request_class`,
`response_class`), so they cannot disagree with the proto; a unit test checks that every
operation has a codec and every RPC of memos.v1.MemoryService an operation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from memos_cluster.api import (
    convert as c, convert_auth as ca, convert_chat as cc, convert_stats as cs,
    convert_lifecycle as lc, convert_structure as cst)
from memos_cluster.api.memos.v1 import memos_pb2 as pb
from memos_cluster.core.operations import OPERATIONS
from memos_cluster.core.structure import EntityDetail
from memos_cluster.core.tier_types import AdapterListing
from memos_cluster.core.types import AddResult, DeleteResult, GetResult, ShardHealth

SERVICE = pb.DESCRIPTOR.services_by_name["MemoryService"]


@dataclass(frozen=True)
class Codec:
    """Both directions of one operation. Gateway: `parse(request)` gives the arguments,
    `reply(result)` the response (for a stream: one response per event). Client:
    `build(*arguments)` gives the request, `read(response)` the result (or the event)."""

    parse: Callable[[Any], tuple]
    reply: Callable[[Any], Any]
    build: Callable[..., Any]
    read: Callable[[Any], Any]


def request_class(operation: str) -> type:
    return getattr(pb, SERVICE.methods_by_name[OPERATIONS[operation].rpc].input_type.name)


def response_class(operation: str) -> type:
    return getattr(pb, SERVICE.methods_by_name[OPERATIONS[operation].rpc].output_type.name)


def _cube_only(request_cls: type, reply: Callable[[Any], Any],
               read: Callable[[Any], Any]) -> Codec:
    """An operation whose only argument is the cube id."""
    return Codec(lambda r: (r.cube_id,), reply, lambda cube_id: request_cls(cube_id=cube_id), read)


def _job(request_cls: type) -> Codec:
    return Codec(lambda r: (r.job_id,), c.job_to_pb, lambda job_id: request_cls(job_id=job_id),
                 c.job_from_pb)


def _empty(request_cls: type, reply: Callable[[Any], Any], read: Callable[[Any], Any]) -> Codec:
    return Codec(lambda r: (), reply, lambda: request_cls(), read)


def _adapters_reply(listing: AdapterListing) -> pb.ListAdaptersResponse:
    return pb.ListAdaptersResponse(adapters=[
        c.adapter_to_pb(r, r.version == listing.current_version) for r in listing.adapters])


def _adapters_read(reply: pb.ListAdaptersResponse) -> AdapterListing:
    current = [a.version for a in reply.adapters if a.current]
    return AdapterListing(tuple(c.adapter_from_pb(a) for a in reply.adapters),
                          current[0] if current else 0)


def _health_reply(shards: list[ShardHealth]) -> pb.HealthResponse:
    return pb.HealthResponse(ok=all(s.is_ok for s in shards), shards=[
        pb.ShardHealth(shard_id=s.shard_id, ok=s.is_ok, detail=s.detail) for s in shards])


def _entity_reply(detail: EntityDetail) -> pb.GetEntityResponse:
    response = pb.GetEntityResponse(entity=cst.entity_to_pb(detail.entity))
    for memory in detail.memories:
        c.memory_to_pb(memory, response.memories.add())
    for relation in detail.relations:
        cst.relation_to_pb(relation, response.relations.add())
    for neighbour in detail.neighbours:
        cst.neighbour_to_pb(neighbour, response.neighbours.add())
    return response


def _entity_read(r: pb.GetEntityResponse) -> EntityDetail:
    return EntityDetail(cst.entity_from_pb(r.entity),
                        memories=tuple(c.memory_from_pb(m) for m in r.memories),
                        relations=tuple(cst.relation_from_pb(x) for x in r.relations),
                        neighbours=tuple(cst.neighbour_from_pb(n) for n in r.neighbours))


def _add_build(cube_id: str, items) -> pb.AddMemoriesRequest:
    request = pb.AddMemoriesRequest(cube_id=cube_id)
    for item in items:
        c.new_memory_to_pb(item, request.memories.add())
    return request


def _search_reply(hits) -> pb.SearchResponse:
    response = pb.SearchResponse()
    for hit in hits:
        c.hit_to_pb(hit, response.hits.add())
    return response


CODECS: Mapping[str, Codec] = {
    # cubes and memories
    "create_cube": Codec(lambda r: (c.cube_from_pb(r),),
                         lambda spec: pb.CreateCubeResponse(cube=c.cube_to_pb(spec)),
                         c.create_cube_to_pb, lambda r: c.cube_spec_from_pb(r.cube)),
    "delete_cube": _cube_only(pb.DeleteCubeRequest,
                              lambda n: pb.DeleteCubeResponse(num_memories_deleted=n),
                              lambda r: r.num_memories_deleted),
    "list_cubes": _empty(pb.ListCubesRequest,
                         lambda cubes: pb.ListCubesResponse(cubes=[c.cube_to_pb(x) for x in cubes]),
                         lambda r: [c.cube_spec_from_pb(x) for x in r.cubes]),
    "get_cube": _cube_only(pb.GetCubeRequest,
                           lambda stats: pb.GetCubeResponse(stats=c.stats_to_pb(stats)),
                           lambda r: c.stats_from_pb(r.stats)),
    "add": Codec(lambda r: (r.cube_id, [c.new_memory_from_pb(m) for m in r.memories]),
                 lambda res: pb.AddMemoriesResponse(
                     ids=list(res.ids), num_inserted=res.num_inserted,
                     num_unchanged=res.num_unchanged,
                     superseded=[lc.supersession_to_pb(d) for d in res.superseded]),
                 _add_build,
                 lambda r: AddResult(tuple(r.ids), r.num_inserted, r.num_unchanged,
                                     tuple(lc.supersession_from_pb(d) for d in r.superseded))),
    "search": Codec(lambda r: (c.search_from_pb(r),), _search_reply, c.search_to_pb,
                    lambda r: [c.hit_from_pb(h) for h in r.hits]),
    "get": Codec(lambda r: (r.cube_id, list(r.ids)) + ((tuple(r.states),) if r.states else ()),
                 lambda res: pb.GetMemoriesResponse(
                     memories=[c.memory_to_pb(m) for m in res.items],
                     missing_ids=list(res.missing_ids)),
                 lambda cube_id, ids, states=(): pb.GetMemoriesRequest(
                     cube_id=cube_id, ids=list(ids), states=list(states)),
                 lambda r: GetResult(tuple(c.memory_from_pb(m) for m in r.memories),
                                     tuple(r.missing_ids))),
    "list_memories": Codec(lambda r: (c.list_from_pb(r),), c.page_to_pb, c.list_to_pb,
                           c.page_from_pb),
    "list_entities": Codec(lambda r: (cst.entity_query_from_pb(r),), cst.entity_page_to_pb,
                           cst.entity_query_to_pb, cst.entity_page_from_pb),
    "get_entity": Codec(lambda r: (r.cube_id, r.entity_id), _entity_reply,
                        lambda cube_id, entity_id: pb.GetEntityRequest(cube_id=cube_id,
                                                                       entity_id=entity_id),
                        _entity_read),
    "update": Codec(lambda r: (c.update_from_pb(r),),
                    lambda item: pb.UpdateMemoryResponse(memory=c.memory_to_pb(item)),
                    c.update_to_pb, lambda r: c.memory_from_pb(r.memory)),
    "history": Codec(lambda r: (r.cube_id, r.id),
                     lambda versions: pb.GetMemoryHistoryResponse(
                         versions=[c.memory_to_pb(m) for m in versions]),
                     lambda cube_id, memory_id: pb.GetMemoryHistoryRequest(cube_id=cube_id,
                                                                           id=memory_id),
                     lambda r: [c.memory_from_pb(m) for m in r.versions]),
    "feedback": Codec(lambda r: (lc.feedback_from_pb(r),),
                      lambda res: lc.feedback_result_to_pb(res, c.memory_to_pb),
                      lc.feedback_to_pb, lambda r: lc.feedback_result_from_pb(r, c.memory_from_pb)),
    "delete": Codec(lambda r: (r.cube_id, list(r.ids)),
                    lambda res: pb.DeleteMemoriesResponse(num_deleted=res.num_deleted,
                                                          missing_ids=list(res.missing_ids)),
                    lambda cube_id, ids: pb.DeleteMemoriesRequest(cube_id=cube_id, ids=list(ids)),
                    lambda r: DeleteResult(r.num_deleted, tuple(r.missing_ids))),
    "health": _empty(pb.HealthRequest, _health_reply,
                     lambda r: [ShardHealth(s.shard_id, s.ok, s.detail) for s in r.shards]),
    "ping": _empty(pb.PingRequest, lambda _: pb.PingResponse(), lambda r: None),
    # activation and parametric memory
    "activate": Codec(lambda r: (r.cube_id, list(r.memory_ids), r.replace),
                      c.block_stats_to_pb,
                      lambda cube_id, ids, replace: pb.ActivateMemoriesRequest(
                          cube_id=cube_id, memory_ids=list(ids), replace=replace),
                      c.block_stats_from_pb),
    "generate": Codec(lambda r: (c.generate_from_pb(r),), c.generate_event_to_pb,
                      c.generate_to_pb, c.generate_event_from_pb),
    "chat": Codec(lambda r: (cc.chat_from_pb(r),), cc.chat_event_to_pb, cc.chat_to_pb,
                  cc.chat_event_from_pb),
    "train": Codec(lambda r: (r.cube_id, list(r.memory_ids), r.rank, r.steps, r.learning_rate,
                              list(r.questions)),
                   c.job_to_pb,
                   lambda cube_id, ids, rank, steps, lr, questions=(): pb.TrainAdapterRequest(
                       cube_id=cube_id, memory_ids=list(ids), rank=rank, steps=steps,
                       learning_rate=lr, questions=list(questions)),
                   c.job_from_pb),
    "training_job": _job(pb.GetTrainingJobRequest),
    "cancel_training": _job(pb.CancelTrainingRequest),
    "adapters": _cube_only(pb.ListAdaptersRequest, _adapters_reply, _adapters_read),
    "delete_adapter": Codec(lambda r: (r.cube_id, r.version),
                            lambda _: pb.DeleteAdapterResponse(),
                            lambda cube_id, version: pb.DeleteAdapterRequest(cube_id=cube_id,
                                                                             version=version),
                            lambda r: None),
    # the scheduler and the shards
    "tier_status": _cube_only(pb.GetTierStatusRequest, c.tier_status_to_pb,
                              c.tier_status_from_pb),
    "scheduler": Codec(lambda r: (r.action,), c.scheduler_status_to_pb,
                       lambda action: pb.ControlSchedulerRequest(action=action),
                       c.scheduler_status_from_pb),
    "gateway_stats": _empty(pb.GetGatewayStatsRequest, cs.stats_to_pb, cs.stats_from_pb),
    "shards": _empty(pb.ListShardsRequest, c.shards_status_to_pb, c.shards_status_from_pb),
    "reshard": Codec(lambda r: (list(r.shard_ids),), c.shards_status_to_pb,
                     lambda shard_ids: pb.ReshardRequest(shard_ids=list(shard_ids)),
                     c.shards_status_from_pb),
    # users, keys, grants
    "whoami": _empty(pb.WhoAmIRequest, ca.principal_to_pb, ca.principal_from_pb),
    "create_user": Codec(lambda r: (r.user_id, r.role), ca.user_to_pb,
                         lambda user_id, role: pb.CreateUserRequest(user_id=user_id, role=role),
                         ca.user_from_pb),
    "list_users": _empty(pb.ListUsersRequest,
                         lambda users: pb.ListUsersResponse(users=[ca.user_to_pb(u)
                                                                   for u in users]),
                         lambda r: [ca.user_from_pb(u) for u in r.users]),
    "delete_user": Codec(lambda r: (r.user_id,), lambda _: pb.DeleteUserResponse(),
                         lambda user_id: pb.DeleteUserRequest(user_id=user_id), lambda r: None),
    "create_key": Codec(
        # 0 on the wire is "never expires"; a negative lifetime reaches validation as itself.
        lambda r: (r.user_id, r.name, float(r.expires_in_s) or None, r.rate_limit_rps),
        lambda made: pb.CreateApiKeyResponse(key=ca.key_to_pb(made[0]), api_key=made[1]),
        lambda user_id, name, expires_in_s, rate: pb.CreateApiKeyRequest(
            user_id=user_id, name=name, expires_in_s=int(expires_in_s or 0),
            rate_limit_rps=rate),
        lambda r: (ca.key_from_pb(r.key), r.api_key)),
    "list_keys": Codec(lambda r: (r.user_id,),
                       lambda keys: pb.ListApiKeysResponse(keys=[ca.key_to_pb(k) for k in keys]),
                       lambda user_id: pb.ListApiKeysRequest(user_id=user_id),
                       lambda r: [ca.key_from_pb(k) for k in r.keys]),
    "revoke_key": Codec(lambda r: (r.key_id,), ca.key_to_pb,
                        lambda key_id: pb.RevokeApiKeyRequest(key_id=key_id), ca.key_from_pb),
    "share_cube": Codec(lambda r: (r.cube_id, r.user_id, r.permission), ca.access_to_pb,
                        lambda cube_id, user_id, permission: pb.ShareCubeRequest(
                            cube_id=cube_id, user_id=user_id, permission=permission),
                        ca.access_from_pb),
    "revoke_cube": Codec(lambda r: (r.cube_id, r.user_id), ca.access_to_pb,
                         lambda cube_id, user_id: pb.RevokeCubeRequest(cube_id=cube_id,
                                                                       user_id=user_id),
                         ca.access_from_pb),
    "cube_access": _cube_only(pb.GetCubeAccessRequest, ca.access_to_pb, ca.access_from_pb),
}
