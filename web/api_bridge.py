"""The AgentBridge API under /api/tools/agent-bridge/ (loopback only, like every /api/tools
route): agents, DNS, mappings, detected models, bypass, the listener, certificates, the
upstream CA, diagnose and repair. The work is done by router.bridge.control.BridgeControl."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from router.bridge.control import BridgeControl
from router.store import agents as store_agents
from router.store.records import AgentState
from web.context import runtime
from web.errors import read_json
from web.openapi import doc
from web.validation import parse_body

PREFIX = "/api/tools/agent-bridge"

routes = web.RouteTableDef()


# --------------------------------------------------------------------------- bodies


class _Body(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class ServerAction(_Body):
    action: Literal["start", "stop", "restart", "trust-cert", "regenerate-cert"]


class DnsAction(_Body):
    enabled: bool


class MappingItem(_Body):
    source: str = Field(min_length=1, max_length=200)
    target: str = Field(min_length=1, max_length=300)
    effort: str | None = Field(
        default=None, description="none|low|medium|high|xhigh (extra, max = xhigh)"
    )


class MappingPut(_Body):
    mappings: list[MappingItem] = Field(max_length=500)


class RouteAllBody(_Body):
    route_all: bool = Field(alias="routeAll")


class BypassPut(_Body):
    patterns: list[str] = Field(max_length=1000)


class CertAction(_Body):
    action: Literal["download", "regenerate"]


class UpstreamCaPost(_Body):
    path: str = Field(min_length=1, max_length=4096)


# --------------------------------------------------------------------------- responses


class AgentRow(BaseModel):
    agent_id: str
    display_name: str
    hosts: list[str]
    format: str
    divert: bool
    capture_only_reason: str | None = None
    dns_enabled: bool
    dns_active: bool
    cert_trusted: bool
    setup_completed: bool
    route_all: bool
    last_started_at: datetime | None = None
    last_error: str | None = None
    mappings: int


class BridgeState(BaseModel):
    running: bool
    port: int
    cert_ready: bool = Field(alias="certReady")
    intercepted_count: int = Field(alias="interceptedCount")
    active_connections: int = Field(alias="activeConnections")
    last_started_at: str | None = Field(alias="lastStartedAt")
    last_error: str | None = Field(
        default=None,
        alias="lastError",
        description="why the last start, stop or DNS change failed (port held, no permission, "
        "hosts file not writable); null once the listener started",
    )
    available: bool
    note: str | None = None


class UpstreamCa(BaseModel):
    path: str | None = Field(description="the upstream CA in use (null: system roots only)")
    source: Literal["env", "flag", "api"] | None = Field(
        description="where the path in use came from; env and flag win over the API's value"
    )
    stored: str | None = Field(description="the API's persisted value")
    valid: bool | None = None
    subjects: list[str] | None = None
    error: str | None = None


class UpstreamCaSet(UpstreamCa):
    overridden_by: Literal["env", "flag"] | None = Field(alias="overriddenBy")
    applied: bool = Field(
        description="already in use for every new upstream connection (router and proxy)"
    )
    applies_after_restart: bool = Field(
        alias="appliesAfterRestart",
        description="true only where no running proxy and router took it (offline CLI)",
    )


class MappingRow(BaseModel):
    agent_id: str
    source_model: str
    target_model: str
    effort: str | None = None
    updated_at: datetime


class BypassRow(BaseModel):
    pattern: str
    source: Literal["default", "user"]
    created_at: datetime | None = None


class DetectedModel(BaseModel):
    model: str
    count: int
    mapped_to: str | None = Field(default=None, alias="mappedTo")


class CheckRow(BaseModel):
    id: str
    ok: bool
    status: Literal["ok", "fail", "skip"]
    detail: str
    fix: str | None = None
    agent: str | None = None


class Diagnosis(BaseModel):
    ok: bool
    checks: list[CheckRow]


class DnsResult(AgentState):
    """The agent's state (the contract's snake_case row) and what changed in the hosts file."""

    hosts_lines_added: list[str] = Field(default_factory=list, alias="hostsLinesAdded")
    hosts_lines_removed: list[str] = Field(default_factory=list, alias="hostsLinesRemoved")
    resolver_flushed: bool = Field(default=False, alias="resolverFlushed")
    resolver_detail: str = Field(default="", alias="resolverDetail")
    hint: str | None = None
    warning: str | None = None


class TrustResult(BaseModel):
    status: str
    store: str
    detail: str = ""
    guide: str | None = None
    nss: list[str] = Field(default_factory=list)
    trusted: bool
    fingerprint: str | None = None


class CertInfo(BaseModel):
    path: str
    fingerprint: str
    not_after: str = Field(alias="notAfter")
    subject: str
    trusted: bool


class Regenerated(BaseModel):
    regenerated: bool
    fingerprint: str
    previous_fingerprint: str = Field(alias="previousFingerprint")
    path: str
    reloaded: bool
    trusted: bool
    trust: TrustResult | None = None
    hint: str | None = None


class ServerResult(BaseModel):
    """``start``/``stop``/``restart``: the listener's state; ``trust-cert``: a trust result;
    ``regenerate-cert``: the new CA. One object holding whichever applies."""

    running: bool | None = None
    port: int | None = None
    trusted: bool | None = None
    fingerprint: str | None = None
    regenerated: bool | None = None


class RepairResult(BaseModel):
    hosts_lines_removed: list[str] = Field(alias="hostsLinesRemoved")
    resolver_flushed: bool = Field(alias="resolverFlushed")
    system_proxy_reverted: bool = Field(alias="systemProxyReverted")
    errors: list[str]


# --------------------------------------------------------------------------- helpers


def control(request: web.Request) -> BridgeControl:
    bridge: BridgeControl = runtime(request).bridge
    return bridge


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(data: Any) -> str:
    import json

    return json.dumps(data, default=str)


# --------------------------------------------------------------------------- agents


@routes.get(f"{PREFIX}/agents")
@doc("the nine agents: state, hosts, divert support (capture-only ones say why)",
     response=list[AgentRow])  # fmt: skip
async def list_agents(request: web.Request) -> web.Response:
    rows = await asyncio.to_thread(control(request).list_agents)
    return _json([AgentRow.model_validate(r).model_dump(mode="json") for r in rows])


@routes.post(f"{PREFIX}/agents/{{agentId}}/dns")
@doc("add or remove the agent's hosts-file lines", request=DnsAction, response=DnsResult,
     errors=(403, 409, 501))  # fmt: skip
async def agent_dns(request: web.Request) -> web.Response:
    body = parse_body(DnsAction, await read_json(request))
    result = await control(request).set_dns(request.match_info["agentId"], body.enabled)
    return _json(result)


@routes.post(f"{PREFIX}/agents/{{agentId}}/route-all")
@doc("divert every chat call of the agent (unmapped ones with the model unchanged)",
     request=RouteAllBody, response=AgentState)  # fmt: skip
async def agent_route_all(request: web.Request) -> web.Response:
    body = parse_body(RouteAllBody, await read_json(request))
    return _json(control(request).set_route_all(request.match_info["agentId"], body.route_all))


@routes.get(f"{PREFIX}/agents/{{agentId}}/mappings")
@doc("the agent's model mappings", response=list[MappingRow], errors=(400,))
async def get_mappings(request: web.Request) -> web.Response:
    return _json(control(request).mappings(request.match_info["agentId"]))


@routes.put(f"{PREFIX}/agents/{{agentId}}/mappings")
@doc("replace the agent's mappings atomically (targets must resolve)", request=MappingPut,
     response=list[MappingRow])  # fmt: skip
async def put_mappings(request: web.Request) -> web.Response:
    body = parse_body(MappingPut, await read_json(request))
    rows = control(request).put_mappings(
        request.match_info["agentId"], [(m.source, m.target, m.effort) for m in body.mappings]
    )
    return _json(rows)


@routes.get(f"{PREFIX}/agents/{{agentId}}/detected-models")
@doc("models seen in this agent's captured traffic, with counts",
     response=list[DetectedModel], errors=(400,))  # fmt: skip
async def detected_models(request: web.Request) -> web.Response:
    bridge = control(request)
    agent_id = request.match_info["agentId"]
    bridge.agent(agent_id)
    # Counted by the capture path into the store (batched), so the figures outlive the live
    # buffer and restarts; the mapping shown is the one that applies to the model today.
    rows = []
    for seen in store_agents.list_detected_models(agent_id):
        mapping = store_agents.find_mapping(agent_id, seen.model)
        rows.append(
            DetectedModel(
                model=seen.model,
                count=seen.count,
                mappedTo=mapping.target_model if mapping is not None else None,
            ).model_dump(by_alias=True)
        )
    return _json(rows)


# --------------------------------------------------------------------------- bypass


@routes.get(f"{PREFIX}/bypass")
@doc("bypass patterns (never decrypted): the defaults and the user's", response=list[BypassRow])
async def get_bypass(request: web.Request) -> web.Response:
    return _json(control(request).bypass_rows())


@routes.put(f"{PREFIX}/bypass")
@doc("replace the user's bypass patterns (applied to the next connection)", request=BypassPut,
     response=list[BypassRow])  # fmt: skip
async def put_bypass(request: web.Request) -> web.Response:
    body = parse_body(BypassPut, await read_json(request))
    return _json(control(request).put_bypass(body.patterns))


# --------------------------------------------------------------------------- listener, certs


@routes.get(f"{PREFIX}/state")
@doc("the AgentBridge listener's state", response=BridgeState)
async def get_state(request: web.Request) -> web.Response:
    return _json(control(request).state())


@routes.post(f"{PREFIX}/server")
@doc("start, stop or restart the listener; trust or regenerate the CA", request=ServerAction,
     response=ServerResult, errors=(403, 409, 501))  # fmt: skip
async def server_action(request: web.Request) -> web.Response:
    body = parse_body(ServerAction, await read_json(request))
    bridge = control(request)
    if body.action == "start":
        return _json(await bridge.start_server())
    if body.action == "stop":
        return _json(await bridge.stop_server())
    if body.action == "restart":
        await bridge.stop_server()
        return _json(await bridge.start_server())
    if body.action == "trust-cert":
        return _json(await asyncio.to_thread(bridge.certs.trust_ca))
    return _json(await asyncio.to_thread(bridge.certs.regenerate))


@routes.get(f"{PREFIX}/cert")
@doc("the CA: path, SHA-256 fingerprint, expiry, trusted", response=CertInfo)
async def get_cert(request: web.Request) -> web.Response:
    return _json(await asyncio.to_thread(control(request).certs.cert_info))


@routes.post(f"{PREFIX}/cert")
@doc("download the CA certificate (PEM) or regenerate the CA", request=CertAction,
     response=Regenerated, alt_media="application/x-pem-file")  # fmt: skip
async def cert_action(request: web.Request) -> web.StreamResponse:
    body = parse_body(CertAction, await read_json(request))
    bridge = control(request)
    if body.action == "download":
        ca = bridge.certs.ca()
        return web.Response(
            text=ca.cert_pem,
            content_type="application/x-pem-file",
            headers={
                "Content-Disposition": 'attachment; filename="llmtap-ca.pem"',
                "X-Llmtap-Fingerprint": ca.fingerprint_sha256,
            },
        )
    return _json(await asyncio.to_thread(bridge.certs.regenerate))


@routes.post(f"{PREFIX}/cert/untrust")
@doc("remove the CA from the OS trust store", response=TrustResult, no_body=True)
async def cert_untrust(request: web.Request) -> web.Response:
    return _json(await asyncio.to_thread(control(request).certs.untrust_ca))


@routes.get(f"{PREFIX}/upstream-ca")
@doc("the upstream CA (corporate TLS) in use, where it came from, and whether it is valid",
     response=UpstreamCa)  # fmt: skip
async def get_upstream_ca(request: web.Request) -> web.Response:
    return _json(control(request).certs.upstream_ca())


@routes.post(f"{PREFIX}/upstream-ca")
@doc("set the upstream CA path: validated, persisted and applied at once to new upstream "
     "connections (LLMTAP_UPSTREAM_CA / --upstream-ca win)",
     request=UpstreamCaPost, response=UpstreamCaSet)  # fmt: skip
async def set_upstream_ca(request: web.Request) -> web.Response:
    body = parse_body(UpstreamCaPost, await read_json(request))
    return _json(control(request).certs.set_upstream_ca(body.path))


# --------------------------------------------------------------------------- diagnose, repair


@routes.get(f"{PREFIX}/diagnose")
@doc("checks with a fix hint for each failing one", response=Diagnosis)
async def diagnose(request: web.Request) -> web.Response:
    bridge = control(request)
    return _json(await asyncio.to_thread(bridge.diagnose, server_running=True))


@routes.post(f"{PREFIX}/repair")
@doc("remove every hosts-file line llmtap wrote and revert the system proxy",
     response=RepairResult, no_body=True)  # fmt: skip
async def repair(request: web.Request) -> web.Response:
    return _json(dict(await asyncio.to_thread(control(request).repair)))


def add_routes(app: web.Application) -> None:
    app.router.add_routes(routes)
