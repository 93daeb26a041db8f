"""The Traffic Inspector's recording sessions, custom hosts, capture modes and the ingest door
(the records, replay, exports and the WebSocket are in web/inspector.py, which wires both)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from router.errors import BadRequest, FieldError, ServiceUnavailable, Unauthorized, validation_error
from router.store import hosts as store_hosts
from router.store import sessions as store_sessions
from router.store.records import CustomHost, Session
from router.traffic.record import InterceptedRequest
from web.context import runtime, services
from web.errors import read_json
from web.inspector import (
    PREFIX,
    Body,
    Har,
    flush_sessions,
    har_response,
    inspector_of,
    optional_json,
    session_records,
    wire,
)
from web.openapi import doc
from web.runtime import CaptureControl
from web.security import INGEST_HEADER, INGEST_PATH, ingest_token, tokens_equal
from web.validation import parse_body

routes = web.RouteTableDef()


# --------------------------------------------------------------------------- bodies


class SessionCreate(Body):
    name: str | None = Field(default=None, max_length=200)
    profile: Literal["llm", "custom", "all"] | None = None


class SessionPatch(Body):
    action: Literal["stop", "rename"]
    name: str | None = Field(default=None, max_length=200)


class HostCreate(Body):
    host: str
    enabled: bool = True
    label: str | None = None
    kind: Literal["llm", "app", "custom"] = "custom"


class HostPatch(Body):
    enabled: bool | None = None
    label: str | None = None
    kind: Literal["llm", "app", "custom"] | None = None


class HttpProxyBody(Body):
    action: Literal["start", "stop"]


class SystemProxyBody(Body):
    action: Literal["apply", "revert"]
    port: int | None = Field(default=None, ge=1, le=65535)
    guard_minutes: int | None = Field(default=None, ge=1, le=24 * 60)


class TlsInterceptBody(Body):
    enabled: bool


# --------------------------------------------------------------------------- responses


class SessionWithRequests(Session):
    """A session with its records in their final state, newest first."""

    requests: list[InterceptedRequest]


class _Mode(BaseModel):
    model_config = ConfigDict(extra="allow")
    active: bool


class BridgeMode(_Mode):
    port: int | None = None
    note: str | None = None


class CustomHostsMode(_Mode):
    count: int
    partial: bool | None = None
    note: str | None = None


class HttpProxyMode(_Mode):
    port: int
    tls_intercept: bool = Field(alias="tlsIntercept")


class SystemProxyMode(_Mode):
    guard_minutes: int | None = Field(default=None, alias="guardMinutes")
    guard_until: str | None = Field(default=None, alias="guardUntil")


class CaptureModes(BaseModel):
    """Each capture mode's state (``running`` False: no mitmproxy in this process)."""

    model_config = ConfigDict(extra="allow")
    running: bool
    reason: str | None = None
    agent_bridge: BridgeMode = Field(alias="agentBridge")
    custom_hosts: CustomHostsMode = Field(alias="customHosts")
    http_proxy: HttpProxyMode = Field(alias="httpProxy")
    system_proxy: SystemProxyMode = Field(alias="systemProxy")


class Ingested(BaseModel):
    id: str
    status: int | Literal["in-flight", "error"]


# --------------------------------------------------------------------------- sessions


def _session_wire(session: Any) -> dict[str, Any]:
    data: dict[str, Any] = session.model_dump(mode="json")
    return data


@routes.get(f"{PREFIX}/sessions")
@doc("recording sessions, newest first", response=list[Session])
async def list_sessions(request: web.Request) -> web.Response:
    await flush_sessions(request)
    return web.json_response([_session_wire(s) for s in store_sessions.list_all()])


@routes.post(f"{PREFIX}/sessions")
@doc("start a recording session", request=SessionCreate, response=Session, status=201,
     body_optional=True)  # fmt: skip
async def start_session(request: web.Request) -> web.Response:
    body = parse_body(SessionCreate, await optional_json(request))
    session = inspector_of(request).start_session(body.name, body.profile)
    return web.json_response(_session_wire(session), status=201)


@routes.get(f"{PREFIX}/sessions/{{id}}")
@doc("a session with its records in their final state", response=SessionWithRequests)
async def get_session(request: web.Request) -> web.Response:
    await flush_sessions(request)
    session_id = request.match_info["id"]
    data = _session_wire(store_sessions.get(session_id))
    data["requests"] = wire(session_records(session_id))
    return web.json_response(data)


@routes.patch(f"{PREFIX}/sessions/{{id}}")
@doc("stop or rename a session", request=SessionPatch, response=Session)
async def patch_session(request: web.Request) -> web.Response:
    body = parse_body(SessionPatch, await read_json(request))
    inspector = inspector_of(request)
    session_id = request.match_info["id"]
    if body.action == "stop":
        session = inspector.stop_session(session_id)
    else:
        if not (body.name and body.name.strip()):
            raise BadRequest("invalid rename", [FieldError("name", "must not be empty")])
        session = inspector.rename_session(session_id, body.name)
    await flush_sessions(request)
    return web.json_response(_session_wire(store_sessions.get(session.id)))


@routes.delete(f"{PREFIX}/sessions/{{id}}")
@doc("delete a session and its records", status=204)
async def delete_session(request: web.Request) -> web.Response:
    inspector_of(request).delete_session(request.match_info["id"])
    return web.Response(status=204)


@routes.get(f"{PREFIX}/sessions/{{id}}/export.har")
@doc("the session as HAR 1.2", response=Har)
async def export_session_har(request: web.Request) -> web.StreamResponse:
    await flush_sessions(request)
    session_id = request.match_info["id"]
    store_sessions.get(session_id)  # 404 for an unknown session
    records = list(reversed(session_records(session_id)))  # HAR: in capture order
    return await har_response(request, records, f"llmtap-session-{session_id}.har")


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
@doc("custom hosts", response=list[CustomHost])
async def list_hosts(request: web.Request) -> web.Response:
    return web.json_response([_host_wire(h) for h in store_hosts.list_all()])


@routes.post(f"{PREFIX}/hosts")
@doc("add a custom host", request=HostCreate, response=CustomHost, status=201, errors=(409,))
async def create_host(request: web.Request) -> web.Response:
    body = parse_body(HostCreate, await read_json(request))
    host = store_hosts.create(body.host, enabled=body.enabled, label=body.label, kind=body.kind)
    await _reload_custom_hosts(request)
    return web.json_response(_host_wire(host), status=201)


@routes.patch(f"{PREFIX}/hosts/{{host}}")
@doc("change a custom host", request=HostPatch, response=CustomHost)
async def patch_host(request: web.Request) -> web.Response:
    body = parse_body(HostPatch, await read_json(request))
    host = store_hosts.update(
        request.match_info["host"], enabled=body.enabled, label=body.label, kind=body.kind
    )
    await _reload_custom_hosts(request)
    return web.json_response(_host_wire(host))


@routes.delete(f"{PREFIX}/hosts/{{host}}")
@doc("remove a custom host", status=204)
async def delete_host(request: web.Request) -> web.Response:
    store_hosts.delete(request.match_info["host"])
    await _reload_custom_hosts(request)
    return web.Response(status=204)


# --------------------------------------------------------------------------- capture modes


NO_CAPTURE = "capture is not running in this process (the proxy modes need `llmtap up`)"


def _capture(request: web.Request) -> CaptureControl:
    capture = runtime(request).capture
    if capture is None:
        raise ServiceUnavailable(NO_CAPTURE)
    return capture


AGENT_BRIDGE_NOTE = (
    "capture is not running in this process, so neither is the :443 listener (hosts-file DNS, "
    "certificates and mappings are managed at /api/tools/agent-bridge)"
)


@routes.get(f"{PREFIX}/capture-modes")
@doc("each capture mode's state", response=CaptureModes)
async def capture_modes(request: web.Request) -> web.Response:
    capture = runtime(request).capture
    if capture is not None:
        return web.json_response(capture.state())
    settings = services(request).settings
    custom = [h for h in store_hosts.list_all() if h.enabled]
    return web.json_response(
        {
            "running": False,
            "reason": NO_CAPTURE,
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
@doc("start or stop the HTTP proxy", request=HttpProxyBody, response=CaptureModes,
     errors=(409, 503))  # fmt: skip
async def http_proxy(request: web.Request) -> web.Response:
    body = parse_body(HttpProxyBody, await read_json(request))
    result = await _capture(request).http_proxy(body.action)
    return web.json_response(result)


@routes.post(f"{PREFIX}/capture-modes/system-proxy")
@doc("point the OS proxy setting at llmtap, or revert it", request=SystemProxyBody,
     response=CaptureModes, errors=(409, 500, 501, 503))  # fmt: skip
async def system_proxy(request: web.Request) -> web.Response:
    body = parse_body(SystemProxyBody, await read_json(request))
    result = await _capture(request).system_proxy(body.action, body.port, body.guard_minutes)
    return web.json_response(result)


@routes.post(f"{PREFIX}/capture-modes/tls-intercept")
@doc("decrypt (or only tunnel) the HTTP proxy's TLS", request=TlsInterceptBody,
     response=CaptureModes, errors=(503,))  # fmt: skip
async def tls_intercept(request: web.Request) -> web.Response:
    body = parse_body(TlsInterceptBody, await read_json(request))
    result = await _capture(request).tls_intercept(body.enabled)
    return web.json_response(result)


# --------------------------------------------------------------------------- ingest


@routes.post(INGEST_PATH)
@doc("a record from an external capture process (token-gated)", request=InterceptedRequest,
     response=Ingested)  # fmt: skip
async def ingest(request: web.Request) -> web.Response:
    expected = ingest_token(services(request).settings.data_dir)
    if not tokens_equal(request.headers.get(INGEST_HEADER), expected):
        raise Unauthorized(f"a valid {INGEST_HEADER} header is required")
    data = await read_json(request, limit_mb=services(request).settings.max_request_mb)
    try:
        record = InterceptedRequest.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, "the body is not an InterceptedRequest") from None
    stored = inspector_of(request).upsert(record)
    return web.json_response({"id": stored.id, "status": stored.status})
