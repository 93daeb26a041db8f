"""The OpenAPI 3.1 document, generated from the app's own routes and the pydantic models each
handler declares with :func:`doc` (so the spec cannot drift from the code)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from router import __version__
from router.store.records import (
    ProviderConnection,
    ProviderConnectionCreate,
    ProviderConnectionPatch,
    ProviderModels,
)

REF = "#/components/schemas/{model}"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_PATH_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


@dataclass(frozen=True, slots=True)
class Param:
    """A query parameter; ``schema`` is a JSON schema fragment."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True, slots=True)
class OpDoc:
    summary: str
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    query: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    any_body: bool = False  # a JSON object body that the handler validates itself
    stream: bool = False  # may answer text/event-stream


_DOCS: dict[Callable[..., Any], OpDoc] = {}


def doc[H: Callable[..., Any]](
    summary: str,
    *,
    request: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    query: tuple[Param, ...] = (),
    errors: tuple[int, ...] = (),
) -> Callable[[H], H]:
    """Declare a handler's request/response models next to its route (inner decorator)."""

    def register(handler: H) -> H:
        _DOCS[handler] = OpDoc(summary, request, response, status, query, errors)
        return handler

    return register


def document(handler: Callable[..., Any], op: OpDoc) -> None:
    """For handlers in modules that do not use :func:`doc` themselves."""
    _DOCS[handler] = op


# --------------------------------------------------------------------------- shared shapes


class FieldDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    message: str
    type: str
    code: str | None = None
    details: list[FieldDetail] | None = None
    request_id: str = Field(alias="requestId")


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class Deleted(BaseModel):
    deleted: bool = True


# --------------------------------------------------------------------------- builder


def _tag(path: str) -> str:
    parts = [p for p in path.split("/") if p and not p.startswith("{")]
    if parts[:1] == ["api"] and len(parts) > 1 and parts[1] != "v1":
        return parts[1]
    return "router" if any(p.startswith("v1") for p in parts[:2]) else (parts[0] if parts else "ui")


def _op_id(method: str, path: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", _PATH_PARAM.sub(r"by_\1", path)).strip("_")
    return f"{method.lower()}_{slug or 'root'}"


def _fallback_doc(handler: Callable[..., Any]) -> OpDoc:
    text = (getattr(handler, "__doc__", None) or "").strip().splitlines()
    return OpDoc(text[0] if text else getattr(handler, "__name__", "handler").replace("_", " "))


def build_spec(app: web.Application) -> dict[str, Any]:
    """Every route the app registers (HEAD twins aside), with the declared models."""
    ops: list[tuple[str, str, OpDoc]] = []
    for route in app.router.routes():
        if route.method not in METHODS or route.resource is None:
            continue
        op = _DOCS.get(route.handler) or _fallback_doc(route.handler)
        ops.append((route.method, route.resource.canonical, op))

    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorEnvelope, "serialization")]
    for _, _, op in ops:
        if op.request is not None:
            wanted.append((op.request, "validation"))
        if op.response is not None:
            wanted.append((op.response, "serialization"))
    refs, defs = models_json_schema(list(dict.fromkeys(wanted)), by_alias=True, ref_template=REF)

    error = {"content": {"application/json": {"schema": refs[(ErrorEnvelope, "serialization")]}}}
    paths: dict[str, dict[str, Any]] = {}
    op_ids: set[str] = set()
    for method, path, op in ops:
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PATH_PARAM.findall(path)
        ]
        params += [
            {"name": q.name, "in": "query", "required": q.required, "schema": q.schema}
            | ({"description": q.description} if q.description else {})
            for q in op.query
        ]
        content: dict[str, Any] = {"application/json": {"schema": {}}}
        if op.response is not None:
            content = {"application/json": {"schema": refs[(op.response, "serialization")]}}
        if op.stream:
            content["text/event-stream"] = {"schema": {"type": "string"}}
        responses: dict[str, Any] = {
            str(op.status): {"description": op.summary, "content": content}
        }
        body: dict[str, Any] | None = None
        if op.request is not None:
            body = {
                "required": True,
                "content": {"application/json": {"schema": refs[(op.request, "validation")]}},
            }
        elif op.any_body:
            body = {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        codes = set(op.errors)
        if body is not None or op.query:
            codes.add(400)
        if _PATH_PARAM.search(path):
            codes.add(404)
        for code in sorted(codes):
            responses[str(code)] = {"description": "error", **error}
        op_id = base = _op_id(method, path)
        n = 1
        while op_id in op_ids:  # "/v1" and "/v1/" slug alike
            n += 1
            op_id = f"{base}_{n}"
        op_ids.add(op_id)
        operation: dict[str, Any] = {
            "operationId": op_id,
            "summary": op.summary,
            "tags": [_tag(path)],
            "responses": responses,
        }
        if params:
            operation["parameters"] = params
        if body is not None:
            operation["requestBody"] = body
        paths.setdefault(path, {})[method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "llmtap API",
            "version": __version__,
            "description": "Router API (/v1) and management API (/api), generated from the code.",
        },
        "servers": [{"url": "http://127.0.0.1:20128"}],
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": defs.get("$defs", {})},
    }


# --------------------------------------------------------------------------- routes of others
# web/v1.py and web/api_providers.py declare their routes without `doc`; their shapes are the
# wire formats (validated by the codecs) and the provider records.


class ProviderList(BaseModel):
    connections: list[ProviderConnection]


class ProviderTestResult(BaseModel):
    ok: bool
    latency_ms: float = Field(alias="latencyMs")
    error: str | None = None
    models: int | None = None


class ProviderModelsCached(ProviderModels):
    cached: bool = True


class ModelEntry(BaseModel):
    id: str
    object: str = "model"
    owned_by: str
    created: int = 0


class ModelList(BaseModel):
    object: str = "list"
    data: list[ModelEntry]


def _register_others() -> None:
    from web import api_providers as prov
    from web import v1

    wire = "request in the {} wire format; JSON or SSE reply"
    for handler, fmt in (
        (v1.chat_completions, "OpenAI chat completions"),
        (v1.messages, "Anthropic messages"),
        (v1.responses, "OpenAI Responses"),
        (v1.gemini, "Gemini generateContent / streamGenerateContent"),
    ):
        document(
            handler, OpDoc(wire.format(fmt), any_body=True, stream=True, errors=(401, 404, 502))
        )
    document(v1.messages_count_tokens, OpDoc("estimate input tokens", any_body=True, errors=(401,)))
    document(v1.models, OpDoc("models clients may ask for", response=ModelList, errors=(401,)))
    document(
        v1.provider_models, OpDoc("one provider's models", response=ModelList, errors=(400, 401))
    )
    document(v1.index, OpDoc("name, version, status"))
    document(prov.list_providers, OpDoc("list provider connections", response=ProviderList))
    document(
        prov.create_provider,
        OpDoc(
            "create a provider connection",
            ProviderConnectionCreate,
            ProviderConnection,
            201,
            errors=(409,),
        ),
    )
    document(prov.get_provider, OpDoc("one provider connection", response=ProviderConnection))
    document(
        prov.patch_provider,
        OpDoc(
            "update a provider connection",
            ProviderConnectionPatch,
            ProviderConnection,
            errors=(409,),
        ),
    )
    document(prov.delete_provider, OpDoc("delete a provider connection", response=Deleted))
    document(prov.test_provider, OpDoc("round trip to the upstream", response=ProviderTestResult))
    document(
        prov.provider_models, OpDoc("models the provider reports", response=ProviderModelsCached)
    )


_register_others()
