"""Management API for the process: resilience settings, health, settings, the OpenAPI spec."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

import psutil
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.alias_generators import to_camel

from router import __version__
from router.errors import validation_error
from router.routing.breaker import ResilienceSettings
from router.settings import MUTABLE, Settings
from router.store import config as store_config
from web.context import reply, runtime
from web.errors import read_json
from web.openapi import build_spec, doc
from web.runtime import Runtime
from web.validation import parse_body

routes = web.RouteTableDef()


# --------------------------------------------------------------------------- resilience


class OpenApiDocument(BaseModel):
    """An OpenAPI 3.1 document (https://spec.openapis.org/oas/v3.1.0)."""

    model_config = ConfigDict(extra="allow")
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]


class ResetResult(BaseModel):
    reset: int  # how many breakers were forgotten


def load_resilience() -> ResilienceSettings:
    """The stored resilience settings (defaults for what was never set)."""
    return ResilienceSettings.model_validate(store_config.get_resilience())


def current_resilience(request: web.Request) -> ResilienceSettings:
    guard = getattr(runtime(request), "guard", None)
    return guard.breakers.settings if guard is not None else load_resilience()


@routes.get("/api/resilience")
@doc("circuit-breaker thresholds and cooldowns", response=ResilienceSettings)
async def get_resilience(request: web.Request) -> web.Response:
    return reply(current_resilience(request))


@routes.patch("/api/resilience")
@doc("change breaker thresholds/cooldowns (only the fields sent)", request=ResilienceSettings,
     response=ResilienceSettings)  # fmt: skip
async def patch_resilience(request: web.Request) -> web.Response:
    body = await read_json(request)
    # Validated merged with the current values: the cap-above-base rule spans two fields.
    merged = current_resilience(request).model_dump(by_alias=True) | body
    try:
        new = ResilienceSettings.model_validate(merged)
    except ValidationError as exc:
        raise validation_error(exc, "invalid resilience settings") from exc
    store_config.set_resilience(new.model_dump(by_alias=True))
    guard = getattr(runtime(request), "guard", None)
    if guard is not None:
        guard.breakers.settings = new
    return reply(new)


@routes.post("/api/resilience/reset")
@doc("reset every circuit breaker and 429 cooldown", response=ResetResult, no_body=True)
async def reset_resilience(request: web.Request) -> web.Response:
    guard = getattr(runtime(request), "guard", None)
    count = 0
    if guard is not None:
        count = len(guard.breakers.snapshot())
        guard.breakers.reset()
    return reply(ResetResult(reset=count))


# --------------------------------------------------------------------------- health


class Listener(BaseModel):
    name: str
    host: str
    port: int | None
    active: bool


class Memory(BaseModel):
    rss_bytes: int = Field(serialization_alias="rssBytes")


class Health(BaseModel):
    status: str = "ok"
    version: str = __version__
    started_at: datetime = Field(serialization_alias="startedAt")
    uptime_seconds: float = Field(serialization_alias="uptimeSeconds")
    memory: Memory
    breakers: dict[str, dict[str, Any]]
    listeners: list[Listener]
    call_logs_pending: int = Field(serialization_alias="callLogsPending")
    call_logs_dropped: int = Field(serialization_alias="callLogsDropped")


def _api_port(request: web.Request) -> int | None:
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    return int(sock[1]) if isinstance(sock, tuple) and len(sock) >= 2 else None


@routes.get("/api/monitoring/health")
@doc("uptime, version, memory, breaker states, listeners", response=Health)
async def health(request: web.Request) -> web.Response:
    rt = runtime(request)
    settings = rt.settings
    guard = getattr(rt, "guard", None)
    started = rt.services.started_at
    # Capture listeners are the mitmproxy side's (runtime.capture); without it, none run.
    capture = rt.capture.state() if rt.capture is not None else None
    proxy_active = bool(capture and capture["httpProxy"]["active"])
    bridge_active = bool(capture and capture["agentBridge"]["active"])
    listeners = [
        Listener(
            name="api", host=settings.host, port=_api_port(request) or settings.port, active=True
        ),
        Listener(name="httpProxy", host="127.0.0.1", port=settings.proxy_port, active=proxy_active),
        Listener(
            name="agentBridge", host="127.0.0.1", port=settings.bridge_port, active=bridge_active
        ),
    ]
    return reply(
        Health(
            started_at=datetime.fromtimestamp(started, UTC),
            uptime_seconds=round(time.time() - started, 3),
            memory=Memory(rss_bytes=psutil.Process().memory_info().rss),
            breakers=guard.breakers.snapshot() if guard is not None else {},
            listeners=listeners,
            call_logs_pending=getattr(rt.writer, "pending", 0),
            call_logs_dropped=getattr(rt.writer, "dropped", 0),
        )
    )


# --------------------------------------------------------------------------- settings


def _settings_models() -> tuple[type[BaseModel], type[BaseModel]]:
    """The wire views of the mutable settings, derived from :class:`Settings` itself so the
    types and bounds cannot drift: a patch (every field optional) and the full view."""
    patch: dict[str, Any] = {}
    view: dict[str, Any] = {}
    for name in sorted(MUTABLE):
        info = Settings.model_fields[name]
        typ = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
        patch[name] = (typ, Field(default=None, alias=to_camel(name)))
        view[name] = (typ, Field(serialization_alias=to_camel(name)))
    # Settings whose stored value differs from what the running process started with and
    # that only a restart applies (the rest take effect at once).
    view["pending_restart"] = (list[str], Field(default=[], serialization_alias="pendingRestart"))
    config = ConfigDict(extra="forbid")  # camelCase only on the wire
    return (
        create_model("SettingsPatch", __config__=config, **patch),
        create_model("SettingsView", **view),
    )


SettingsPatch, SettingsView = _settings_models()


def settings_view(rt: Runtime) -> BaseModel:
    settings = rt.settings
    values = {name: getattr(settings, name) for name in MUTABLE}
    return SettingsView(**values, pending_restart=[to_camel(n) for n in rt.pending_restart()])


@routes.get("/api/settings")
@doc("the settings the API may change", response=SettingsView)
async def get_settings(request: web.Request) -> web.Response:
    return reply(settings_view(runtime(request)))


@routes.patch("/api/settings")
@doc("change settings (validated whole, stored, applied to the running process)",
     request=SettingsPatch, response=SettingsView)  # fmt: skip
async def patch_settings(request: web.Request) -> web.Response:
    patch = parse_body(SettingsPatch, await read_json(request))
    # The patch fields are typed like Settings (not Optional), so an explicit null is a 400.
    changes = {name: getattr(patch, name) for name in patch.model_fields_set}
    settings = runtime(request).settings
    try:  # all of it or nothing: validate the result before storing or applying any field
        Settings.model_validate(settings.model_dump() | changes)
    except ValidationError as exc:
        raise validation_error(exc, "invalid settings") from exc
    store_config.set_settings(changes)
    rt = runtime(request)
    rt.apply_settings(changes)
    return reply(settings_view(rt))


# --------------------------------------------------------------------------- OpenAPI


@routes.get("/api/openapi/spec")
@doc("this API as an OpenAPI 3.1 document, generated from the routes and models",
     response=OpenApiDocument)  # fmt: skip
async def openapi_spec(request: web.Request) -> web.Response:
    return web.json_response(build_spec(request.app))
