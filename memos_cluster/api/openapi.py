"""The OpenAPI 3.1 document of the HTTP/JSON API, generated from the route table
(`http_routes.py`) and the protobuf descriptors of memos.v1, so it describes exactly what the
gateway parses and returns (proto3's JSON mapping: proto field names, 64-bit integers as strings
or numbers, enums by name). `protos/openapi.json` is this document, committed; a unit test fails
when the two drift, and `python -m memos_cluster.api.openapi` rewrites the file.

Who uses it: the gateway's HTTP app serves it at /openapi.json; the property-based test of the
HTTP API (schemathesis) generates requests from it and checks every reply against it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from memos_cluster.api.http_routes import HTTP_STATUS, ROUTES, Route
from memos_cluster.api.rpcs import request_class, response_class

COMMITTED = Path(__file__).resolve().parents[2] / "protos" / "openapi.json"
VERSION = "1.0.0"
_INT32 = {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32,
          FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32}
_INT64 = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64,
          FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64}
_WELL_KNOWN = {"google.protobuf.Struct": {"type": "object"},
               "google.protobuf.Value": {},
               "google.protobuf.ListValue": {"type": "array"}}
ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string", "enum": sorted(HTTP_STATUS)},
                       "message": {"type": "string"},
                       "field": {"type": "string", "description": "the request field at fault"}}}}}


def _scalar(field: FieldDescriptor, schemas: dict[str, Any]) -> dict[str, Any]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return _message_ref(field.message_type, schemas)
    if field.type == FieldDescriptor.TYPE_ENUM:
        return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
    if field.type == FieldDescriptor.TYPE_BOOL:
        return {"type": "boolean"}
    if field.type in _INT32:
        return {"type": "integer", "format": "int32"}
    if field.type in _INT64:  # proto3 JSON writes 64-bit integers as strings
        return {"type": ["integer", "string"], "format": "int64", "pattern": "^-?[0-9]+$"}
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return {"type": "number"}
    return {"type": "string"}


def _field_schema(field: FieldDescriptor, schemas: dict[str, Any]) -> dict[str, Any]:
    message = field.message_type
    if message is not None and message.GetOptions().map_entry:
        return {"type": "object",
                "additionalProperties": _scalar(message.fields_by_name["value"], schemas)}
    if field.is_repeated:
        return {"type": "array", "items": _scalar(field, schemas)}
    return _scalar(field, schemas)


def _properties(message: Descriptor, schemas: dict[str, Any], leave_out=()) -> dict[str, Any]:
    return {f.name: _field_schema(f, schemas) for f in message.fields if f.name not in leave_out}


def _message_ref(message: Descriptor, schemas: dict[str, Any]) -> dict[str, Any]:
    if message.full_name in _WELL_KNOWN:
        return dict(_WELL_KNOWN[message.full_name])
    if message.name not in schemas:
        schemas[message.name] = {}  # placeholder first: messages may refer to themselves
        schemas[message.name] = {"type": "object", "properties": _properties(message, schemas)}
    return {"$ref": f"#/components/schemas/{message.name}"}


def _parameters(route: Route, request: Descriptor, schemas: dict[str, Any]) -> list[dict]:
    fields = request.fields_by_name
    params = [{"name": name, "in": "path", "required": True,
               "schema": _scalar(fields[route.path_fields.get(name, name)], schemas)}
              for name in route.path_params]
    if not route.has_body:
        params += [{"name": f.name, "in": "query", "required": False,
                    "schema": _field_schema(f, schemas), "style": "form", "explode": True}
                   for f in request.fields if f.name not in route.path_params]
    return params


def _operation(route: Route, schemas: dict[str, Any]) -> dict[str, Any]:
    request = request_class(route.operation).DESCRIPTOR
    reply = _message_ref(response_class(route.operation).DESCRIPTOR, schemas)
    taken = {route.path_fields.get(p, p) for p in route.path_params}
    media = "text/event-stream" if route.streaming else "application/json"
    described = ("server-sent events: `token` events (GenerateToken), then one `stats` event "
                 "(GenerateStats); a failure after the first event is an `error` event"
                 if route.streaming else "OK")
    operation: dict[str, Any] = {
        "operationId": f"{route.operation}_{route.method.lower()}_"
                       f"{'_'.join(p for p in route.path.strip('/').split('/') if '{' not in p)}",
        "summary": route.summary,
        "parameters": _parameters(route, request, schemas),
        "responses": {
            "200": {"description": described, "content": {media: {"schema": reply}}},
            "default": {"description": "an error: its HTTP status maps its code (docs/api.md)",
                        "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/Error"}}}}}}
    if route.has_body:
        operation["requestBody"] = {"required": False, "content": {"application/json": {
            "schema": {"type": "object", "additionalProperties": False,
                       "properties": _properties(request, schemas, taken)}}}}
    return operation


def openapi_document() -> dict[str, Any]:
    """The document, built from the code each time (deterministic: sorted keys on writing)."""
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, Any] = {}
    for route in ROUTES:
        paths.setdefault(route.full_path, {})[route.method.lower()] = _operation(route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "memos-cluster", "version": VERSION,
                 "description": "Memory for LLM agents: cubes of memories in three tiers "
                                "(plaintext, activation, parametric). The same operations as "
                                "the gRPC service memos.v1.MemoryService."},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "an API key: `Authorization: Bearer <key>`"}}},
    }


def rendered() -> str:
    return json.dumps(openapi_document(), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":  # rewrite the committed document
    COMMITTED.write_text(rendered())
    sys.stdout.write(f"wrote {COMMITTED}\n")
