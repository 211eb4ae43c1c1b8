"""The MCP server (Model Context Protocol, the official `mcp` SDK, streamable HTTP) at /mcp on the
gateway's HTTP port: memory as tools an agent (Claude Desktop, Cursor, the OpenAI Agents SDK,
LangGraph) can call. Each tool is one operation of the table, run through the replica's own
path (validate -> authorize -> audit -> operation) with the caller's key, so a user's key sees
only that user's cubes; errors come back as tool errors naming their code.

Every HTTP request to /mcp is authenticated first (`_KeyRequired`): a missing or wrong key gets
401 before any tool is listed. Stateless transport with JSON replies: any gateway replica can
answer any request (no session affinity behind Serve's proxy).
"""
from __future__ import annotations

import time
from typing import Annotated, Any, Literal, Optional

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import Field
from starlette.requests import Request
from starlette.routing import Route

from memos_cluster.api.http_routes import message_json, parse_json
from memos_cluster.api.rpcs import CODECS, request_class
from memos_cluster.core.errors import MemosError

from actors.http_common import error_response, request_metadata

INSTRUCTIONS = (
    "Long-term memory. A cube holds one user's or agent's memories; list_cubes shows the cubes "
    "you may use. Save facts worth remembering with add_memories, find them with "
    "search_memories before answering questions about the past, correct them with "
    "update_memory (the old text stays in memory_history), and answer from memory with "
    "generate. find_entities and get_entity show the people, places and things the memories "
    "mention, with what is said about each.")


class _KeyRequired:
    """ASGI: the caller's API key checked (WhoAmI) before the MCP transport sees the request."""

    def __init__(self, app: Any, gateway: Any):
        self._app, self._gateway = app, gateway

    async def __call__(self, scope, receive, send) -> None:
        try:
            await self._gateway.run(request_metadata(Request(scope)), "whoami", ())
        except Exception as exc:  # the edge: refused before any MCP message is read
            await error_response(self._gateway.as_memos_error(exc))(scope, receive, send)
            return
        await self._app(scope, receive, send)


def build_mcp(gateway: Any) -> tuple[Any, Route]:
    """The MCP server and its route (/mcp). Who calls it: `build_http_app`, per replica."""
    server = MCPServer("memos-cluster", instructions=INSTRUCTIONS)

    async def call(ctx: Context, operation: str, data: dict[str, Any]) -> dict[str, Any]:
        """One operation as the HTTP API would run it: the request's JSON, the caller's key."""
        began, status = time.perf_counter(), "OK"
        headers = ctx.headers or {}
        metadata = (("authorization", headers.get("authorization", "")),)
        codec = CODECS[operation]
        try:
            args = codec.parse(parse_json(request_class(operation), data))
            if operation == "generate":
                return await _generate(gateway, metadata, args)
            return message_json(codec.reply(await gateway.run(metadata, operation, args)))
        except Exception as exc:  # the edge: a tool error the model can read
            error: MemosError = gateway.as_memos_error(exc)
            status = error.status
            raise ToolError(f"{error.status}: {error.message}") from None
        finally:
            gateway.count(operation, status, began, "mcp")

    _register_tools(server, call)
    # Keys, not the Host header, guard this endpoint: it must answer under any service name.
    app = server.streamable_http_app(
        streamable_http_path="/mcp", stateless_http=True, json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
    (route,) = [r for r in app.routes if getattr(r, "path", "") == "/mcp"]
    return server, Route("/mcp", endpoint=_KeyRequired(route.endpoint, gateway))


async def _generate(gateway: Any, metadata: tuple, args: tuple) -> dict[str, Any]:
    """Generate's stream collected: the answer's text and its statistics."""
    codec, text, stats = CODECS["generate"], [], {}
    async for event in gateway.stream(metadata, "generate", args):
        reply = codec.reply(event)
        if reply.WhichOneof("event") == "token":
            text.append(reply.token.text)
        else:
            stats = message_json(reply.stats)
    return {"answer": "".join(text), "stats": stats}


Cube = Annotated[str, Field(description="the cube's id (list_cubes shows yours)")]
TopK = Annotated[int, Field(ge=1, le=200, description="how many memories to return")]


def _dates(memory: dict[str, Any]) -> list[str]:
    """The dates a memory's text mentions, resolved ("7 May 2023"), from its structure."""
    times = memory.get("structure", {}).get("times", [])
    return [t["label"] for t in times if t.get("resolved")]


def _with_dates(found: dict[str, Any]) -> dict[str, Any]:
    """Search hits with each memory's resolved dates in place of its whole structure (the
    character offsets and parse an agent has no use for)."""
    for hit in found.get("hits", []):
        hit["memory"]["dates"] = _dates(hit["memory"])
        hit["memory"].pop("structure", None)
    return found


def _entity(entity: dict[str, Any]) -> dict[str, Any]:
    return {"entity_id": entity["entity_id"], "name": entity["name"], "label": entity["label"],
            "aliases": entity["aliases"], "num_mentions": int(entity["num_mentions"])}


def _entity_detail(detail: dict[str, Any]) -> dict[str, Any]:
    """GetEntity's reply as an agent reads it: the memories' texts and dates, the relations,
    the neighbours by name."""
    return {**_entity(detail["entity"]),
            "memories": [{"id": m["id"], "text": m["text"], "dates": _dates(m)}
                         for m in detail["memories"]],
            "relations": [{k: r[k] for k in ("subject", "predicate", "object", "memory_id")}
                          for r in detail["relations"]],
            "neighbours": [{"name": n["entity"]["name"], "entity_id": n["entity"]["entity_id"],
                            "num_shared": int(n["num_shared"])} for n in detail["neighbours"]]}


def _register_tools(server: Any, call: Any) -> None:
    @server.tool()
    async def list_cubes(ctx: Context) -> dict[str, Any]:
        """List the memory cubes you may read. Call this first to learn which cube ids exist;
        every other tool takes one."""
        return await call(ctx, "list_cubes", {})

    @server.tool()
    async def add_memories(ctx: Context, cube_id: Cube, texts: Annotated[list[str], Field(
            min_length=1, description="one memory a string: a self-contained fact, e.g. "
                                      "'Alice adopted a cat named Miso in May 2024'")]
                           ) -> dict[str, Any]:
        """Save new memories in a cube. Write each as a standalone statement that will make
        sense later without the conversation around it. Returns the new memories' ids."""
        return await call(ctx, "add", {"cube_id": cube_id,
                                       "memories": [{"text": t} for t in texts]})

    @server.tool()
    async def search_memories(ctx: Context, cube_id: Cube, query: Annotated[str, Field(
            description="what to look for, in words (a question works)")],
                              top_k: TopK = 5) -> dict[str, Any]:
        """Find the memories most relevant to a query (keyword and semantic search). Use it
        before answering anything about the user's or agent's past. Returns memories with
        their ids, texts, versions, scores and the dates their texts mention, resolved, best
        first."""
        return _with_dates(await call(ctx, "search", {"cube_ids": [cube_id], "query": query,
                                                      "top_k": top_k}))

    @server.tool()
    async def get_memories(ctx: Context, cube_id: Cube, ids: Annotated[list[str], Field(
            min_length=1, description="memory ids, as search_memories returned them")]
                           ) -> dict[str, Any]:
        """Read memories by id (their current versions); ids not found are listed apart."""
        return await call(ctx, "get", {"cube_id": cube_id, "ids": ids})

    @server.tool()
    async def update_memory(ctx: Context, cube_id: Cube, id: Annotated[str, Field(
            description="the memory's id")], text: Annotated[str, Field(
            description="the corrected memory, whole")],
                            expected_version: Optional[int] = None) -> dict[str, Any]:
        """Replace a memory's text with a corrected one. The old version is kept in its
        history. Give expected_version (from search or get) to refuse the update if someone
        changed the memory since you read it."""
        data: dict[str, Any] = {"cube_id": cube_id, "id": id, "text": text}
        if expected_version:
            data["expected_version"] = expected_version
        return await call(ctx, "update", data)

    @server.tool()
    async def delete_memories(ctx: Context, cube_id: Cube, ids: Annotated[list[str], Field(
            min_length=1, description="memory ids to forget")]) -> dict[str, Any]:
        """Forget memories for good (their histories go too). Ids not found are listed."""
        return await call(ctx, "delete", {"cube_id": cube_id, "ids": ids})

    @server.tool()
    async def memory_feedback(ctx: Context, cube_id: Cube, id: Annotated[str, Field(
            description="the memory's id")], kind: Annotated[Literal[
                "wrong", "outdated", "useful"], Field(
            description="wrong: archive it; outdated: it no longer holds; useful: it helped")],
            text: Annotated[str, Field(description="outdated: what holds now (stored as the "
                                       "memory's successor); else an optional note")] = ""
                              ) -> dict[str, Any]:
        """Judge a memory you were given. A wrong or outdated one is never served again (it
        stays in history); an outdated one's successor, when you give its text, is."""
        return await call(ctx, "feedback", {"cube_id": cube_id, "memory_id": id, "kind": kind,
                                            "text": text})

    @server.tool()
    async def memory_history(ctx: Context, cube_id: Cube, id: Annotated[str, Field(
            description="the memory's id")]) -> dict[str, Any]:
        """Every version a memory has had, oldest first: how a fact changed over time."""
        return await call(ctx, "history", {"cube_id": cube_id, "id": id})

    @server.tool()
    async def find_entities(ctx: Context, cube_id: Cube, name: Annotated[Optional[str], Field(
            description="part of a name or alias, any case; none: every entity")] = None,
                            label: Annotated[Optional[str], Field(
            description="PERSON, ORG, GPE, ... or CONCEPT; none: any")] = None,
                            limit: Annotated[int, Field(
            ge=1, le=200, description="how many entities to return")] = 20
                            ) -> dict[str, Any]:
        """Find the people, places, organisations and things a cube's memories mention,
        most mentioned first. Returns each entity's id, name, label, aliases and how many
        memories mention it, and how many match in all."""
        page = await call(ctx, "list_entities", {"cube_id": cube_id, "name_contains": name or "",
                                                 "label": label or "", "page_size": limit})
        return {"entities": [_entity(e) for e in page["entities"]], "total": int(page["total"])}

    @server.tool()
    async def get_entity(ctx: Context, cube_id: Cube, entity: Annotated[str, Field(
            description="an entity's id (find_entities) or its name or an alias, any case")]
                         ) -> dict[str, Any]:
        """Everything memory holds about one entity: its aliases, the memories that mention
        it (newest first, with their dates), the relations they state about it, and the
        entities most often mentioned with it."""
        return _entity_detail(await call(ctx, "get_entity", {"cube_id": cube_id,
                                                             "entity_id": entity}))

    @server.tool()
    async def generate(ctx: Context, cube_id: Cube, question: Annotated[str, Field(
            description="the question to answer")], max_new_tokens: Annotated[int, Field(
            ge=1, le=1024, description="the longest answer, in tokens")] = 64
                       ) -> dict[str, Any]:
        """Answer a question with the memory system's own language model, from the memories
        retrieved for it (each served from the fastest tier that keeps the answer exact:
        memory mode auto). Returns the answer, timing statistics and which tier served each
        memory."""
        return await call(ctx, "generate", {
            "cube_ids": [cube_id], "query": question, "max_new_tokens": max_new_tokens,
            "memory_mode": "auto"})
