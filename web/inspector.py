"""The Traffic Inspector API under /api/tools/traffic-inspector/: records, replay, annotations,
exports, recording sessions, custom hosts, capture modes, the WebSocket and the ingest door."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from router import __version__
from router.engine import Inbound, Reply
from router.errors import BadRequest, FieldError, NotFound
from router.store import sessions as store_sessions
from router.traffic.har import iter_har
from router.traffic.jsonl import iter_jsonl_bytes
from router.traffic.merge import model_from_path
from router.traffic.record import InterceptedRequest, RecordFilter
from router.traffic.service import Inspector
from web.context import RUNTIME, runtime, services
from web.errors import parse_json, read_body, read_json
from web.openapi import Param, doc
from web.v1 import send
from web.validation import parse_body
from web.ws import Hub

log = logging.getLogger("llmtap.web.inspector")

PREFIX = "/api/tools/traffic-inspector"
MAX_ANNOTATION = 10_000
HUB: web.AppKey[Hub] = web.AppKey("llmtap.inspector_hub", Hub)

# The router endpoint of each wire format a record can be replayed in.
ROUTER_PATHS = {
    "openai-chat": "/v1/chat/completions",
    "anthropic": "/v1/messages",
    "responses": "/v1/responses",
}


# The list and export filters (router.traffic.record.RecordFilter.from_query).
RECORD_QUERY = (
    Param("profile", {"type": "string", "enum": ["llm", "custom", "all"]}),
    Param("status", {"type": "string", "enum": ["2xx", "3xx", "4xx", "5xx", "error"]}),
    Param("host", {"type": "string"}, "substring of the host"),
    Param("agent", {"type": "string"}),
    Param("source", {"type": "string"}),
    Param("sessionId", {"type": "string"}, "a recording session's stored records"),
    Param("contextKey", {"type": "string"}),
)


# --------------------------------------------------------------------------- bodies


class Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class AnnotationBody(Body):
    annotation: str | None = Field(max_length=MAX_ANNOTATION)


class ReplayBody(Body):
    model: str | None = Field(default=None, min_length=1)


class Har(BaseModel):
    """HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/): ``log`` with its entries."""

    model_config = ConfigDict(extra="allow")
    log: dict[str, Any]


# --------------------------------------------------------------------------- helpers


def inspector_of(request: web.Request) -> Inspector:
    inspector: Inspector = runtime(request).inspector
    return inspector


async def flush_sessions(request: web.Request) -> None:
    """Let queued session upserts land before reading sessions back (off the loop thread:
    the writer's flush waits on a condition)."""
    writer = runtime(request).session_writer
    if writer is not None:
        await asyncio.to_thread(writer.flush, 10.0)


async def optional_json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    raw = await read_body(request)
    if not raw.strip():
        return {}
    return parse_json(raw)


def wire(records: Iterable[InterceptedRequest]) -> list[dict[str, Any]]:
    return [r.to_wire() for r in records]


def session_records(session_id: str) -> list[InterceptedRequest]:
    """A session's records in their final state, newest first."""
    rows = store_sessions.list_records(session_id)
    return [InterceptedRequest.model_validate_json(text) for text in reversed(rows)]


async def _filtered(request: web.Request) -> Iterable[InterceptedRequest]:
    """The list/export query: the live buffer (lazily, record by record), or a session's
    stored records when ``sessionId`` is given (they outlive the buffer and restarts)."""
    flt = RecordFilter.from_query(request.query)
    if flt.session_id is None:
        return inspector_of(request).iter_records(flt)
    await flush_sessions(request)
    # A record's own sessionId names the session active when it was captured; the stored
    # copy is stamped with the session that holds it, so the filter below still matches.
    return [r for r in session_records(flt.session_id) if flt.matches(r)]


async def _stream(
    request: web.Request, chunks: Iterable[bytes], content_type: str, filename: str
) -> web.StreamResponse:
    """An export as a chunked response, written as it is built (bounded memory, and the
    event loop gets a turn between chunks)."""
    response = web.StreamResponse(
        headers={
            "Content-Type": content_type,
            "Content-Disposition": f'attachment; filename="{filename}"',
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


async def har_response(
    request: web.Request, records: Iterable[InterceptedRequest], filename: str
) -> web.StreamResponse:
    chunks = iter_har(records, version=__version__)
    return await _stream(request, chunks, "application/json; charset=utf-8", filename)


# --------------------------------------------------------------------------- records

routes = web.RouteTableDef()


@routes.get(f"{PREFIX}/requests")
@doc("the live buffer (or a session's records), filtered, newest first",
     response=list[InterceptedRequest], query=RECORD_QUERY, errors=(404,))  # fmt: skip
async def list_requests(request: web.Request) -> web.Response:
    return web.json_response(wire(await _filtered(request)))


@routes.delete(f"{PREFIX}/requests")
@doc("clear the live buffer", status=204)
async def clear_requests(request: web.Request) -> web.Response:
    inspector_of(request).clear()
    return web.Response(status=204)


@routes.get(f"{PREFIX}/requests/{{id}}")
@doc("one record", response=InterceptedRequest)
async def get_request(request: web.Request) -> web.Response:
    record = inspector_of(request).find(request.match_info["id"])
    if record is None:
        raise NotFound(f"request '{request.match_info['id']}' not found")
    return web.json_response(record.to_wire())


@routes.put(f"{PREFIX}/requests/{{id}}/annotation")
@doc("set or clear a record's annotation", request=AnnotationBody, response=InterceptedRequest)
async def annotate(request: web.Request) -> web.Response:
    body = parse_body(AnnotationBody, await read_json(request))
    await flush_sessions(request)
    record = inspector_of(request).annotate(request.match_info["id"], body.annotation)
    return web.json_response(record.to_wire())


def _recorded_model(record: InterceptedRequest) -> str | None:
    """The name a replay routes by: for a router call, what its client asked for (resolved
    again, so it reaches the same connection); for a diverted call, its mapping. A router
    record's ``mapped_model`` is the upstream's own name, which no longer resolves bare."""
    if record.source == "router":
        return record.source_model
    return record.mapped_model


async def rerun(
    request: web.Request,
    inspector: Inspector,
    record: InterceptedRequest,
    inbound: Inbound,
    what: str,
) -> Reply:
    """Send a replayed or resent call through the router as the recorded agent; its own record
    is noted "<what> of <record id>"."""
    inbound.request_id = uuid.uuid4().hex
    inbound.agent = record.agent
    inspector.expect_note(inbound.request_id, f"{what} of {record.id}")
    try:
        return await services(request).router.handle(inbound)
    except BaseException:
        inspector.forget_note(inbound.request_id)
        raise


def replay_inbound(record: InterceptedRequest, model: str | None) -> Inbound:
    """The router call that re-runs ``record`` in its own wire format (agent paths mapped to
    the router endpoint of that format), optionally against another model."""
    fmt = record.llm.format if record.llm is not None else None
    if record.body_truncated:
        raise BadRequest("the recorded request body was truncated; it cannot be replayed")
    try:
        body = json.loads(record.request_body or "")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise BadRequest("the recorded request has no JSON body to replay")
    path = record.path.partition("?")[0]
    if fmt in ROUTER_PATHS:
        target = model or _recorded_model(record) or body.get("model")
        if isinstance(target, str) and target:
            body = {**body, "model": target}
        return Inbound(format=fmt, body=body, path=ROUTER_PATHS[fmt])
    if fmt in ("gemini", "cloudcode"):
        stream = path.endswith(":streamGenerateContent")
        path_model = model_from_path(path)
        if fmt == "cloudcode":
            # Cloud Code wraps a Gemini request: {model, project, request: {...}}
            inner = body.get("request")
            if not isinstance(inner, dict):
                raise BadRequest("the recorded Cloud Code request has no 'request' object")
            path_model = body.get("model") if isinstance(body.get("model"), str) else None
            body = inner
        target = model or _recorded_model(record) or path_model
        if not target:
            raise BadRequest("the recorded Gemini request names no model")
        action = "streamGenerateContent" if stream else "generateContent"
        return Inbound(
            format="gemini",
            body=body,
            path=f"/v1beta/models/{target}:{action}",
            path_model=target,
            path_stream=stream,
        )
    raise BadRequest(
        f"cannot replay a request in format '{fmt or 'unknown'}'",
        [FieldError("id", "only openai-chat, anthropic, responses, gemini and cloudcode calls")],
    )


@routes.post(f"{PREFIX}/requests/{{id}}/replay")
@doc("re-run the record through the router (optionally against another model): the\n     router's own reply", request=ReplayBody, body_optional=True, stream=True,
     errors=(429, 502, 504))  # fmt: skip
async def replay(request: web.Request) -> web.StreamResponse:
    record_id = request.match_info["id"]
    body = parse_body(ReplayBody, await optional_json(request))
    inspector = inspector_of(request)
    record = inspector.find(record_id)
    if record is None:
        raise NotFound(f"request '{record_id}' not found")
    reply = await rerun(request, inspector, record, replay_inbound(record, body.model), "replay")
    reply.headers["X-Llmtap-Replay-Of"] = record_id
    return await send(request, reply)


# --------------------------------------------------------------------------- exports


@routes.get(f"{PREFIX}/export.har")
@doc("the filtered list as HAR 1.2", response=Har, query=RECORD_QUERY, errors=(404,))
async def export_har(request: web.Request) -> web.StreamResponse:
    return await har_response(request, await _filtered(request), "llmtap.har")


@routes.get(f"{PREFIX}/export.jsonl")
@doc("the filtered list, one record per line", media="application/x-ndjson",
     query=RECORD_QUERY, errors=(404,))  # fmt: skip
async def export_jsonl(request: web.Request) -> web.StreamResponse:
    chunks = iter_jsonl_bytes(await _filtered(request))
    return await _stream(request, chunks, "application/x-ndjson; charset=utf-8", "llmtap.jsonl")


# --------------------------------------------------------------------------- wiring


@doc("WebSocket: the snapshot in pages, then new / update / clear events", status=101)
async def _ws(request: web.Request) -> web.WebSocketResponse:
    return await request.app[HUB].handle(request)


def add_routes(app: web.Application) -> None:
    """Register the inspector API and its WebSocket hub (closed at app shutdown, before
    aiohttp waits for the open handlers). Needs the Runtime in the app's services."""
    hub = Hub(app[RUNTIME].inspector)
    app[HUB] = hub

    async def close_hub(_app: web.Application) -> None:
        await hub.close()

    app.on_shutdown.append(close_hub)
    app.router.add_get(f"{PREFIX}/ws", _ws)
    app.router.add_routes(routes)
