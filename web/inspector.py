"""The Traffic Inspector API under /api/tools/traffic-inspector/: records, replay, annotations,
exports, recording sessions, custom hosts, capture modes, the WebSocket and the ingest door."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterable
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from router import __version__
from router.engine import Inbound
from router.errors import (
    BadRequest,
    FieldError,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    validation_error,
)
from router.store import hosts as store_hosts
from router.store import sessions as store_sessions
from router.traffic.har import iter_har
from router.traffic.jsonl import iter_jsonl_bytes
from router.traffic.merge import model_from_path
from router.traffic.record import InterceptedRequest, RecordFilter
from router.traffic.service import Inspector
from web.context import RUNTIME, runtime, services
from web.errors import read_json
from web.security import INGEST_HEADER, INGEST_PATH, ingest_token, tokens_equal
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


# --------------------------------------------------------------------------- bodies


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class AnnotationBody(_Body):
    annotation: str | None = Field(max_length=MAX_ANNOTATION)


class ReplayBody(_Body):
    model: str | None = Field(default=None, min_length=1)


class SessionCreate(_Body):
    name: str | None = Field(default=None, max_length=200)
    profile: Literal["llm", "custom", "all"] | None = None


class SessionPatch(_Body):
    action: Literal["stop", "rename"]
    name: str | None = Field(default=None, max_length=200)


class HostCreate(_Body):
    host: str
    enabled: bool = True
    label: str | None = None
    kind: Literal["llm", "app", "custom"] = "custom"


class HostPatch(_Body):
    enabled: bool | None = None
    label: str | None = None
    kind: Literal["llm", "app", "custom"] | None = None


class HttpProxyBody(_Body):
    action: Literal["start", "stop"]


class SystemProxyBody(_Body):
    action: Literal["apply", "revert"]
    port: int | None = Field(default=None, ge=1, le=65535)
    guard_minutes: int | None = Field(default=None, ge=1, le=24 * 60)


class TlsInterceptBody(_Body):
    enabled: bool


# --------------------------------------------------------------------------- helpers


def _inspector(request: web.Request) -> Inspector:
    inspector: Inspector = runtime(request).inspector
    return inspector


async def _flush_sessions(request: web.Request) -> None:
    """Let queued session upserts land before reading sessions back (off the loop thread:
    the writer's flush waits on a condition)."""
    writer = runtime(request).session_writer
    if writer is not None:
        await asyncio.to_thread(writer.flush, 10.0)


async def _optional_json(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}
    return await read_json(request)


def _wire(records: Iterable[InterceptedRequest]) -> list[dict[str, Any]]:
    return [r.to_wire() for r in records]


def _session_records(session_id: str) -> list[InterceptedRequest]:
    """A session's records in their final state, newest first."""
    rows = store_sessions.list_records(session_id)
    return [InterceptedRequest.model_validate_json(text) for text in reversed(rows)]


async def _filtered(request: web.Request) -> Iterable[InterceptedRequest]:
    """The list/export query: the live buffer (lazily, record by record), or a session's
    stored records when ``sessionId`` is given (they outlive the buffer and restarts)."""
    flt = RecordFilter.from_query(request.query)
    if flt.session_id is None:
        return _inspector(request).iter_records(flt)
    await _flush_sessions(request)
    # A record's own sessionId names the session active when it was captured; the stored
    # copy is stamped with the session that holds it, so the filter below still matches.
    return [r for r in _session_records(flt.session_id) if flt.matches(r)]


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


async def _har_response(
    request: web.Request, records: Iterable[InterceptedRequest], filename: str
) -> web.StreamResponse:
    chunks = iter_har(records, version=__version__)
    return await _stream(request, chunks, "application/json; charset=utf-8", filename)


# --------------------------------------------------------------------------- records

routes = web.RouteTableDef()


@routes.get(f"{PREFIX}/requests")
async def list_requests(request: web.Request) -> web.Response:
    return web.json_response(_wire(await _filtered(request)))


@routes.delete(f"{PREFIX}/requests")
async def clear_requests(request: web.Request) -> web.Response:
    _inspector(request).clear()
    return web.Response(status=204)


@routes.get(f"{PREFIX}/requests/{{id}}")
async def get_request(request: web.Request) -> web.Response:
    record = _inspector(request).find(request.match_info["id"])
    if record is None:
        raise NotFound(f"request '{request.match_info['id']}' not found")
    return web.json_response(record.to_wire())


@routes.put(f"{PREFIX}/requests/{{id}}/annotation")
async def annotate(request: web.Request) -> web.Response:
    body = parse_body(AnnotationBody, await read_json(request))
    await _flush_sessions(request)
    record = _inspector(request).annotate(request.match_info["id"], body.annotation)
    return web.json_response(record.to_wire())


def _recorded_model(record: InterceptedRequest) -> str | None:
    """The name a replay routes by: for a router call, what its client asked for (resolved
    again, so it reaches the same connection); for a diverted call, its mapping. A router
    record's ``mapped_model`` is the upstream's own name, which no longer resolves bare."""
    if record.source == "router":
        return record.source_model
    return record.mapped_model


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
async def replay(request: web.Request) -> web.StreamResponse:
    record_id = request.match_info["id"]
    body = parse_body(ReplayBody, await _optional_json(request))
    inspector = _inspector(request)
    record = inspector.find(record_id)
    if record is None:
        raise NotFound(f"request '{record_id}' not found")
    inbound = replay_inbound(record, body.model)
    inbound.request_id = uuid.uuid4().hex
    inbound.agent = record.agent
    inspector.expect_note(inbound.request_id, f"replay of {record_id}")
    try:
        reply = await services(request).router.handle(inbound)
    except BaseException:
        inspector.forget_note(inbound.request_id)
        raise
    reply.headers["X-Llmtap-Replay-Of"] = record_id
    return await send(request, reply)


# --------------------------------------------------------------------------- exports


@routes.get(f"{PREFIX}/export.har")
async def export_har(request: web.Request) -> web.StreamResponse:
    return await _har_response(request, await _filtered(request), "llmtap.har")


@routes.get(f"{PREFIX}/export.jsonl")
async def export_jsonl(request: web.Request) -> web.StreamResponse:
    chunks = iter_jsonl_bytes(await _filtered(request))
    return await _stream(request, chunks, "application/x-ndjson; charset=utf-8", "llmtap.jsonl")


# --------------------------------------------------------------------------- sessions


def _session_wire(session: Any) -> dict[str, Any]:
    data: dict[str, Any] = session.model_dump(mode="json")
    return data


@routes.get(f"{PREFIX}/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    await _flush_sessions(request)
    return web.json_response([_session_wire(s) for s in store_sessions.list_all()])


@routes.post(f"{PREFIX}/sessions")
async def start_session(request: web.Request) -> web.Response:
    body = parse_body(SessionCreate, await _optional_json(request))
    session = _inspector(request).start_session(body.name, body.profile)
    return web.json_response(_session_wire(session), status=201)


@routes.get(f"{PREFIX}/sessions/{{id}}")
async def get_session(request: web.Request) -> web.Response:
    await _flush_sessions(request)
    session_id = request.match_info["id"]
    data = _session_wire(store_sessions.get(session_id))
    data["requests"] = _wire(_session_records(session_id))
    return web.json_response(data)


@routes.patch(f"{PREFIX}/sessions/{{id}}")
async def patch_session(request: web.Request) -> web.Response:
    body = parse_body(SessionPatch, await read_json(request))
    inspector = _inspector(request)
    session_id = request.match_info["id"]
    if body.action == "stop":
        session = inspector.stop_session(session_id)
    else:
        if not (body.name and body.name.strip()):
            raise BadRequest("invalid rename", [FieldError("name", "must not be empty")])
        session = inspector.rename_session(session_id, body.name)
    await _flush_sessions(request)
    return web.json_response(_session_wire(store_sessions.get(session.id)))


@routes.delete(f"{PREFIX}/sessions/{{id}}")
async def delete_session(request: web.Request) -> web.Response:
    _inspector(request).delete_session(request.match_info["id"])
    return web.Response(status=204)


@routes.get(f"{PREFIX}/sessions/{{id}}/export.har")
async def export_session_har(request: web.Request) -> web.StreamResponse:
    await _flush_sessions(request)
    session_id = request.match_info["id"]
    store_sessions.get(session_id)  # 404 for an unknown session
    records = list(reversed(_session_records(session_id)))  # HAR: in capture order
    return await _har_response(request, records, f"llmtap-session-{session_id}.har")


# --------------------------------------------------------------------------- custom hosts


def _host_wire(host: Any) -> dict[str, Any]:
    data: dict[str, Any] = host.model_dump(mode="json")
    return data


async def _reload_custom_hosts(request: web.Request) -> None:
    """The capture path's view, then the hosts file: an enabled custom host gets loopback
    lines like an agent host while the AgentBridge listener runs; others lose theirs."""
    rt = runtime(request)
    previous = list(rt.custom_hosts)
    rt.reload_custom_hosts()
    if rt.bridge is not None:
        await asyncio.to_thread(rt.bridge.sync_custom_hosts, previous)


@routes.get(f"{PREFIX}/hosts")
async def list_hosts(request: web.Request) -> web.Response:
    return web.json_response([_host_wire(h) for h in store_hosts.list_all()])


@routes.post(f"{PREFIX}/hosts")
async def create_host(request: web.Request) -> web.Response:
    body = parse_body(HostCreate, await read_json(request))
    host = store_hosts.create(body.host, enabled=body.enabled, label=body.label, kind=body.kind)
    await _reload_custom_hosts(request)
    return web.json_response(_host_wire(host), status=201)


@routes.patch(f"{PREFIX}/hosts/{{host}}")
async def patch_host(request: web.Request) -> web.Response:
    body = parse_body(HostPatch, await read_json(request))
    host = store_hosts.update(
        request.match_info["host"], enabled=body.enabled, label=body.label, kind=body.kind
    )
    await _reload_custom_hosts(request)
    return web.json_response(_host_wire(host))


@routes.delete(f"{PREFIX}/hosts/{{host}}")
async def delete_host(request: web.Request) -> web.Response:
    store_hosts.delete(request.match_info["host"])
    await _reload_custom_hosts(request)
    return web.Response(status=204)


# --------------------------------------------------------------------------- capture modes


def _capture(request: web.Request) -> Any:
    capture = getattr(runtime(request), "capture", None)
    if capture is None:
        raise ServiceUnavailable(
            "capture is not running in this process (the proxy modes need `llmtap up`)"
        )
    return capture


AGENT_BRIDGE_NOTE = (
    "capture is not running in this process, so neither is the :443 listener (hosts-file DNS, "
    "certificates and mappings are managed at /api/tools/agent-bridge)"
)


@routes.get(f"{PREFIX}/capture-modes")
async def capture_modes(request: web.Request) -> web.Response:
    capture = getattr(runtime(request), "capture", None)
    if capture is not None:
        return web.json_response(capture.state())
    settings = services(request).settings
    custom = [h for h in store_hosts.list_all() if h.enabled]
    return web.json_response(
        {
            "running": False,
            "reason": "capture is not running in this process (the proxy modes need `llmtap up`)",
            "agentBridge": {"active": False, "note": AGENT_BRIDGE_NOTE},
            "customHosts": {"active": bool(custom), "count": len(custom)},
            "httpProxy": {
                "active": False,
                "port": settings.proxy_port,
                "tlsIntercept": settings.tls_intercept,
            },
            "systemProxy": {
                "active": False,
                "guardMinutes": settings.guard_minutes,
                "guardUntil": None,
            },
        }
    )


@routes.post(f"{PREFIX}/capture-modes/http-proxy")
async def http_proxy(request: web.Request) -> web.Response:
    body = parse_body(HttpProxyBody, await read_json(request))
    result = await _capture(request).http_proxy(body.action)
    return web.json_response(result)


@routes.post(f"{PREFIX}/capture-modes/system-proxy")
async def system_proxy(request: web.Request) -> web.Response:
    body = parse_body(SystemProxyBody, await read_json(request))
    result = await _capture(request).system_proxy(body.action, body.port, body.guard_minutes)
    return web.json_response(result)


@routes.post(f"{PREFIX}/capture-modes/tls-intercept")
async def tls_intercept(request: web.Request) -> web.Response:
    body = parse_body(TlsInterceptBody, await read_json(request))
    result = await _capture(request).tls_intercept(body.enabled)
    return web.json_response(result)


# --------------------------------------------------------------------------- ingest


@routes.post(INGEST_PATH)
async def ingest(request: web.Request) -> web.Response:
    expected = ingest_token(services(request).settings.data_dir)
    if not tokens_equal(request.headers.get(INGEST_HEADER), expected):
        raise Unauthorized(f"a valid {INGEST_HEADER} header is required")
    data = await read_json(request, limit_mb=services(request).settings.max_request_mb)
    try:
        record = InterceptedRequest.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, "the body is not an InterceptedRequest") from None
    stored = _inspector(request).upsert(record)
    return web.json_response({"id": stored.id, "status": stored.status})


# --------------------------------------------------------------------------- wiring


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
