"""The OpenAPI 3.1 document, generated from the app's own routes and the pydantic models each
handler declares with :func:`doc` (so the spec cannot drift from the code)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast, get_args, get_origin

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
from web.security import INGEST_PATH, is_protected, is_router_path

REF = "#/components/schemas/{model}"
_REASONS = {
    400: "invalid request (field-level details)",
    401: "a management token or router API key is required",
    403: "refused: not a local client, a foreign Host or Origin, or no CSRF proof",
    404: "not found",
    409: "conflict",
    413: "request body too large",
    415: "the router API takes JSON bodies only",
    429: "every upstream is cooling down (Retry-After)",
    501: "not available in this process or on this system",
    502: "every upstream attempt failed",
    503: "not running in this process",
}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_PATH_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


@dataclass(frozen=True, slots=True)
class Param:
    """A query parameter; ``schema`` is a JSON schema fragment."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


# What a handler may answer: a model, or a list of one (``list[Model]``).
Response = type[BaseModel] | Any


@dataclass(frozen=True, slots=True)
class OpDoc:
    summary: str
    request: type[BaseModel] | None = None
    response: Response | None = None
    status: int = 200
    query: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    any_body: bool = False  # a JSON object body that the handler validates itself
    stream: bool = False  # may answer text/event-stream
    media: str = "application/json"  # the success body's content type
    no_body: bool = False  # a POST that takes no body
    body_optional: bool = False  # the body may be left out (its fields all have defaults)
    alt_media: str | None = None  # a second, non-JSON success content type (e.g. a PEM file)


_DOCS: dict[Callable[..., Any], OpDoc] = {}


def doc[H: Callable[..., Any]](
    summary: str,
    *,
    request: type[BaseModel] | None = None,
    response: Response | None = None,
    status: int = 200,
    query: tuple[Param, ...] = (),
    errors: tuple[int, ...] = (),
    media: str = "application/json",
    no_body: bool = False,
    body_optional: bool = False,
    stream: bool = False,
    alt_media: str | None = None,
) -> Callable[[H], H]:
    """Declare a handler's request/response models next to its route (inner decorator)."""
    op = OpDoc(
        summary, request, response, status, query, errors,
        stream=stream, media=media, no_body=no_body, body_optional=body_optional,
        alt_media=alt_media,
    )  # fmt: skip

    def register(handler: H) -> H:
        _DOCS[handler] = op
        return handler

    return register


def document(handler: Callable[..., Any], op: OpDoc) -> None:
    """For handlers in modules that do not use :func:`doc` themselves."""
    _DOCS[handler] = op


def declared(handler: Callable[..., Any]) -> OpDoc | None:
    """What ``handler`` declared (None: nothing, the document falls back to its docstring)."""
    return _DOCS.get(handler)


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


def _model_of(response: Response) -> type[BaseModel] | None:
    """The model a response declares, itself or as the item of ``list[Model]``."""
    if get_origin(response) is list:
        (item,) = get_args(response)
        return cast(type[BaseModel], item)
    return cast(type[BaseModel] | None, response)


def _edge_statuses(method: str, path: str, body: bool) -> set[int]:
    """What the middlewares answer before the handler runs (web/security.py, web/errors.py):
    the management token or router key (401), the Host / Origin / CSRF checks (403), the
    request size cap (413) and the router's JSON-only rule (415)."""
    codes: set[int] = set()
    if body:
        codes |= {400, 413}
    if path == INGEST_PATH:
        return codes | {401}
    if is_router_path(path):
        codes |= {401, 403}
        if method in ("POST", "PUT", "PATCH"):
            codes.add(415)
    elif is_protected(path):
        codes |= {401, 403}
    return codes


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
        model = _model_of(op.response)
        if model is not None:
            wanted.append((model, "serialization"))
    refs, defs = models_json_schema(list(dict.fromkeys(wanted)), by_alias=True, ref_template=REF)

    def response_schema(response: Response) -> dict[str, Any]:
        model = _model_of(response)
        if model is None:
            return {}
        ref = refs[(model, "serialization")]
        return {"type": "array", "items": ref} if get_origin(response) is list else ref

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
        success: dict[str, Any] = {"description": op.summary}
        if op.status not in (101, 204):
            content: dict[str, Any] = {op.media: {"schema": response_schema(op.response)}}
            if op.media != "application/json":
                content[op.media] = {"schema": {"type": "string"}}
            if op.alt_media:
                content[op.alt_media] = {"schema": {"type": "string"}}
            if op.stream:
                content["text/event-stream"] = {"schema": {"type": "string"}}
            success["content"] = content
        responses: dict[str, Any] = {str(op.status): success}
        body: dict[str, Any] | None = None
        if op.request is not None:
            body = {
                "required": not op.body_optional,
                "content": {"application/json": {"schema": refs[(op.request, "validation")]}},
            }
        elif op.any_body:
            body = {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        codes = set(op.errors) | _edge_statuses(method, path, body is not None)
        if op.query:
            codes.add(400)
        if _PATH_PARAM.search(path):
            codes.add(404)
        for code in sorted(codes - {op.status}):
            responses[str(code)] = {"description": _REASONS.get(code, "error"), **error}
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


class InputTokens(BaseModel):
    input_tokens: int  # Anthropic's wire format


class Index(BaseModel):
    name: str
    version: str
    status: str


def _register_others() -> None:
    from web import api_providers as prov
    from web import ui, v1

    wire = "request in the {} wire format; JSON or SSE reply"
    router_errors = (404, 429, 502, 504)
    for handler, fmt in (
        (v1.chat_completions, "OpenAI chat completions"),
        (v1.messages, "Anthropic messages"),
        (v1.responses, "OpenAI Responses"),
        (v1.gemini, "Gemini generateContent / streamGenerateContent"),
        (v1.cloudcode, "Cloud Code v1internal (Gemini in an envelope)"),
    ):
        document(handler, OpDoc(wire.format(fmt), any_body=True, stream=True, errors=router_errors))
    document(
        v1.messages_count_tokens,
        OpDoc("count input tokens (locally)", response=InputTokens, any_body=True),
    )
    document(v1.models, OpDoc("models clients may ask for", response=ModelList))
    document(v1.provider_models, OpDoc("one provider's models", response=ModelList, errors=(400,)))
    document(v1.index, OpDoc("name, version, status", response=Index))
    document(
        v1.v1_ws.responses_ws,
        OpDoc("the Responses API over a WebSocket (Codex): response.create messages", status=101,
              errors=(426,)),
    )  # fmt: skip
    document(ui.index, OpDoc("the web UI", media="text/html"))
    document(ui.static, OpDoc("the web UI's files", media="*/*"))
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
    document(
        prov.test_provider,
        OpDoc("round trip to the upstream", response=ProviderTestResult, no_body=True),
    )
    document(
        prov.provider_models, OpDoc("models the provider reports", response=ProviderModelsCached)
    )


_register_others()
