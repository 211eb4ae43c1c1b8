"""The operation table: every operation of the memory service, named once, with its gRPC method,
its request validation, its access rule and its audit line.

Every front is a view of this table: the gateway generates its gRPC methods from it (with the
protobuf codecs of `memos_cluster.api.rpcs`) and runs each call as validate -> authenticate and
authorize -> audit -> the operation; the Ray transport calls operations by these names; the
client's methods call them by these names (a unit test holds the three to the table).

Arguments are domain types (`core/types.py`, `core/tier_types.py`), in the order the client and
the gateway's operations take them. Validation runs first, before anything is authorized,
audited or stored, so a malformed request costs nothing and leaves no trace.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

from memos_cluster.core import validation as v
from memos_cluster.core.auth_types import PERMISSIONS, ROLES
from memos_cluster.core.config import MemosConfig
from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.lifecycle import Feedback
from memos_cluster.core.structure import EntityQuery
from memos_cluster.core.chat_checks import chat_with_defaults, check_chat
from memos_cluster.core.tier_types import CONTROL_ACTIONS, ChatCall, GenerateCall
from memos_cluster.core.types import CubeSpec, ListQuery, MemoryUpdate, SearchQuery

# ---- access rules -----------------------------------------------------------------------------
ANY = "any"  # any authenticated caller (the operation itself scopes what it returns)
SYSTEM = "system"  # role admin only
SELF = "self"  # the user named (or owning the key named), or an admin
DEFERRED = "deferred"  # checked by the operation once it knows the cube (training jobs)
UNKNOWN_OWNER = "\0unknown"  # nobody's user id: an unknown key is refused like another's

Subjects = Callable[[Any, tuple], Sequence[str]]  # (auth state, args) -> cubes or users


def _none(state: Any, args: tuple) -> Sequence[str]:
    return ()


def _first(state: Any, args: tuple) -> Sequence[str]:
    return (args[0],)


def _query_cubes(state: Any, args: tuple) -> Sequence[str]:
    return tuple(args[0].cube_ids)  # SearchQuery, GenerateCall and ChatCall


def _cube_of_first(state: Any, args: tuple) -> Sequence[str]:
    return (args[0].cube_id,)


def _key_owner(state: Any, args: tuple) -> Sequence[str]:
    key = state.keys.get(args[0])
    return (key.user_id if key is not None else UNKNOWN_OWNER,)


@dataclass(frozen=True)
class Access:
    need: str  # a permission (read | write | admin) on the cubes, or ANY / SYSTEM / SELF / DEFERRED
    subjects: Subjects = _none  # the cubes (or, for SELF, the users) the call touches


# ---- the table --------------------------------------------------------------------------------
Validate = Callable[[MemosConfig, tuple], None]
Audit = Callable[[tuple], Optional[tuple[str, str, str]]]  # args -> (action, target, detail)


@dataclass(frozen=True)
class Operation:
    name: str  # the client's, the Ray transport's and the gateway's name for it
    rpc: str  # the method of memos.v1.MemoryService
    access: Access
    validate: Validate
    audit: Optional[Audit] = None  # gateway-side admin actions go to the audit log
    streaming: bool = False  # server streaming (Generate)


def _nothing(config: MemosConfig, args: tuple) -> None:
    if args:
        raise InvalidArgument(f"takes no arguments, got {len(args)}", "args")


def _cube(config: MemosConfig, args: tuple) -> None:
    v.check_id(args[0], "cube_id", config.limits)


def _cube_ids(field: str) -> Validate:
    def check(config: MemosConfig, args: tuple) -> None:
        v.check_id(args[0], "cube_id", config.limits)
        v.check_ids(args[1], field, config.limits)
        if len(args) > 2:  # GetMemories' states
            v.check_states(args[2])
    return check


def _feedback(config: MemosConfig, args: tuple) -> None:
    v.check_feedback(v.expect(args[0], Feedback, "feedback"), config.limits)


def _audit_feedback(args: tuple) -> tuple[str, str, str]:
    """Who judged which memory how, and what they said (the text, cut to 200 characters)."""
    feedback = args[0]
    return ("feedback", f"{feedback.cube_id}/{feedback.memory_id}",
            f"{feedback.kind}: {feedback.text[:200]}" if feedback.text else feedback.kind)


def _create_cube(config: MemosConfig, args: tuple) -> None:
    v.check_cube_spec(v.expect(args[0], CubeSpec, "cube"), config.limits)


def _add(config: MemosConfig, args: tuple) -> None:
    v.check_id(args[0], "cube_id", config.limits)
    v.check_new_memories(v.expect_list(args[1], "memories"), config.limits)


def _search(config: MemosConfig, args: tuple) -> None:
    query = v.search_with_defaults(v.expect(args[0], SearchQuery, "query"), config.search)
    v.check_search(query, config.limits)


def _list(config: MemosConfig, args: tuple) -> None:
    v.check_list_query(v.expect(args[0], ListQuery, "query"), config.limits)


def _list_entities(config: MemosConfig, args: tuple) -> None:
    v.check_entity_query(v.expect(args[0], EntityQuery, "query"), config.limits)


def _get_entity(config: MemosConfig, args: tuple) -> None:
    v.check_entity_ref(args[0], args[1], config.limits)


def _update(config: MemosConfig, args: tuple) -> None:
    v.check_update(v.expect(args[0], MemoryUpdate, "update"), config.limits)


def _history(config: MemosConfig, args: tuple) -> None:
    v.check_id(args[0], "cube_id", config.limits)
    v.check_id(args[1], "id", config.limits)


def _activate(config: MemosConfig, args: tuple) -> None:
    cube_id, memory_ids, replace = (*args, False)[:3]
    v.check_id(cube_id, "cube_id", config.limits)
    if not (replace and not memory_ids):  # replacing with nothing empties the block
        v.check_ids(memory_ids, "memory_ids", config.limits)


def _generate(config: MemosConfig, args: tuple) -> None:
    call = v.generate_with_defaults(v.expect(args[0], GenerateCall, "call"), config.activation)
    v.check_generate(call, config.limits, config.activation)


def _chat(config: MemosConfig, args: tuple) -> None:
    call = chat_with_defaults(v.expect(args[0], ChatCall, "call"), config.activation)
    check_chat(call, config.limits, config.activation)


def _train(config: MemosConfig, args: tuple) -> None:
    cube_id, memory_ids, rank, steps, learning_rate, questions = (*args, 0, 0, 0.0, ())[:6]
    v.check_id(cube_id, "cube_id", config.limits)
    if questions:
        v.check_questions(questions, memory_ids, config.limits,
                          config.parametric.max_train_questions)
        v.check_lora_settings(rank, steps, learning_rate)
    else:
        v.check_training(memory_ids, rank, steps, learning_rate, config.limits,
                         config.parametric.max_train_memories)


def _job(config: MemosConfig, args: tuple) -> None:
    v.check_id(args[0], "job_id", config.limits)


def _delete_adapter(config: MemosConfig, args: tuple) -> None:
    v.check_id(args[0], "cube_id", config.limits)
    v.check_positive_int(args[1], "version")


def _scheduler(config: MemosConfig, args: tuple) -> None:
    v.check_choice(args[0], "action", CONTROL_ACTIONS)


def _reshard(config: MemosConfig, args: tuple) -> None:
    v.check_ids(args[0], "shard_ids", config.limits)


def _user(field: str, optional: bool = False) -> Validate:
    def check(config: MemosConfig, args: tuple) -> None:
        value = args[0] if args else ""
        if not (optional and value == ""):
            v.check_id(value, field, config.limits)
    return check


def _create_user(config: MemosConfig, args: tuple) -> None:
    v.check_id(args[0], "user_id", config.limits)
    if len(args) > 1 and args[1] != "":
        v.check_choice(args[1], "role", ROLES)


def _create_key(config: MemosConfig, args: tuple) -> None:
    user_id, name, expires_in_s, rate_limit_rps = (*args, "", "", None, 0.0)[:4]
    if user_id:
        v.check_id(user_id, "user_id", config.limits)
    v.check_key_settings(name, expires_in_s, rate_limit_rps)


def _share(config: MemosConfig, args: tuple) -> None:
    v.check_id(args[0], "cube_id", config.limits)
    v.check_id(args[1], "user_id", config.limits)
    if len(args) > 2:
        v.check_choice(args[2], "permission", PERMISSIONS)


def _audit_cube(action: str) -> Audit:
    return lambda args: (action, args[0], "")


OPERATIONS: Mapping[str, Operation] = {op.name: op for op in (
    # cubes and memories
    Operation("create_cube", "CreateCube", Access(ANY), _create_cube),
    Operation("delete_cube", "DeleteCube", Access("admin", _first), _cube,
              audit=_audit_cube("delete_cube")),
    Operation("list_cubes", "ListCubes", Access(ANY), _nothing),
    Operation("get_cube", "GetCube", Access("read", _first), _cube),
    Operation("add", "AddMemories", Access("write", _first), _add),
    Operation("search", "Search", Access("read", _query_cubes), _search),
    Operation("get", "GetMemories", Access("read", _first), _cube_ids("ids")),
    Operation("list_memories", "ListMemories", Access("read", _cube_of_first), _list),
    Operation("list_entities", "ListEntities", Access("read", _cube_of_first), _list_entities),
    Operation("get_entity", "GetEntity", Access("read", _first), _get_entity),
    Operation("update", "UpdateMemory", Access("write", _cube_of_first), _update),
    Operation("history", "GetMemoryHistory", Access("read", _first), _history),
    Operation("delete", "DeleteMemories", Access("write", _first), _cube_ids("ids")),
    Operation("feedback", "Feedback", Access("write", _cube_of_first), _feedback,
              audit=_audit_feedback),
    Operation("health", "Health", Access(ANY), _nothing),
    Operation("ping", "Ping", Access(ANY), _nothing),
    # activation and parametric memory
    Operation("activate", "ActivateMemories", Access("write", _first), _activate),
    Operation("generate", "Generate", Access("read", _query_cubes), _generate, streaming=True),
    # read on every cube; remembering the turn also needs write on the first (the operation
    # checks it, as only it knows the configured default)
    Operation("chat", "Chat", Access("read", _query_cubes), _chat, streaming=True),
    Operation("train", "TrainAdapter", Access("write", _first), _train),
    Operation("training_job", "GetTrainingJob", Access(DEFERRED), _job),
    Operation("cancel_training", "CancelTraining", Access(DEFERRED), _job),
    Operation("adapters", "ListAdapters", Access("read", _first), _cube),
    Operation("delete_adapter", "DeleteAdapter", Access("admin", _first), _delete_adapter,
              audit=lambda args: ("delete_adapter", args[0], f"version={args[1]}")),
    # the scheduler and the shards
    Operation("tier_status", "GetTierStatus", Access("read", _first), _cube),
    Operation("scheduler", "ControlScheduler", Access(SYSTEM), _scheduler,
              audit=lambda args: None if args[0] == "status" else
              ("scheduler", "cluster", f"action={args[0]}")),
    Operation("shards", "ListShards", Access(SYSTEM), _nothing),
    Operation("gateway_stats", "GetGatewayStats", Access(SYSTEM), _nothing),
    Operation("reshard", "Reshard", Access(SYSTEM), _reshard,
              audit=lambda args: ("reshard", "cluster", f"shards={','.join(args[0])}")),
    # users, keys, grants (the auth registry audits its own changes)
    Operation("whoami", "WhoAmI", Access(ANY), _nothing),
    Operation("create_user", "CreateUser", Access(SYSTEM), _create_user),
    Operation("list_users", "ListUsers", Access(SYSTEM), _nothing),
    Operation("delete_user", "DeleteUser", Access(SYSTEM), _user("user_id")),
    Operation("create_key", "CreateApiKey", Access(SELF, _first), _create_key),
    Operation("list_keys", "ListApiKeys", Access(SELF, _first), _user("user_id", True)),
    Operation("revoke_key", "RevokeApiKey", Access(SELF, _key_owner), _user("key_id")),
    Operation("share_cube", "ShareCube", Access("admin", _first), _share),
    Operation("revoke_cube", "RevokeCube", Access("admin", _first), _share),
    Operation("cube_access", "GetCubeAccess", Access("admin", _first), _cube),
)}
BY_RPC: Mapping[str, Operation] = {op.rpc: op for op in OPERATIONS.values()}


def operation_of_kind(name: str, streaming: bool) -> Operation:
    """The operation named, when it is unary (or, with `streaming`, server streaming); else
    InvalidArgument. Who calls it: the client transports and the gateway's Ray-transport
    methods, before they encode or run anything."""
    op = OPERATIONS.get(name)
    if op is None or op.streaming != streaming:
        kind = "streaming" if streaming else "unary"
        raise InvalidArgument(f"{name!r} is not a {kind} memos operation", "method")
    return op


def validate(config: MemosConfig, name: str, args: tuple) -> Operation:
    """The operation, once its arguments passed its checks (InvalidArgument naming the field).
    Who calls it: the gateway, first thing for every gRPC and Ray-transport call. A malformed
    argument list from a hand-rolled Ray-transport caller is INVALID_ARGUMENT too."""
    op = OPERATIONS.get(name)
    if op is None:
        raise InvalidArgument(f"{name!r} is not a memos operation", "method")
    try:
        op.validate(config, tuple(args))
    except (IndexError, TypeError, AttributeError, ValueError) as exc:
        raise InvalidArgument(f"{name}: malformed arguments ({exc})", "args") from None
    return op
