"""Management API for provider connections: /api/providers (keys never leave the server)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from router.errors import UpstreamError
from router.providers import list_models
from router.store import providers as store
from router.store.records import (
    ProviderConnection,
    ProviderConnectionCreate,
    ProviderConnectionPatch,
)
from web.context import runtime, services
from web.errors import read_json
from web.validation import parse_body

routes = web.RouteTableDef()


def public(conn: ProviderConnection) -> dict[str, Any]:
    return conn.model_dump(by_alias=True, mode="json")


def _reload(request: web.Request) -> None:
    runtime(request).reload_catalog()


@routes.get("/api/providers")
async def list_providers(request: web.Request) -> web.Response:
    return web.json_response({"connections": [public(c) for c in store.list_all()]})


@routes.post("/api/providers")
async def create_provider(request: web.Request) -> web.Response:
    data = parse_body(ProviderConnectionCreate, await read_json(request))
    conn = store.create(data)
    _reload(request)
    return web.json_response(public(conn), status=201)


@routes.get("/api/providers/{id}")
async def get_provider(request: web.Request) -> web.Response:
    return web.json_response(public(store.get(request.match_info["id"])))


@routes.patch("/api/providers/{id}")
async def patch_provider(request: web.Request) -> web.Response:
    patch = parse_body(ProviderConnectionPatch, await read_json(request))
    conn = store.update(request.match_info["id"], patch)
    _reload(request)
    return web.json_response(public(conn))


@routes.delete("/api/providers/{id}")
async def delete_provider(request: web.Request) -> web.Response:
    store.delete(request.match_info["id"])
    _reload(request)
    return web.json_response({"deleted": True})


@routes.post("/api/providers/{id}/test")
async def test_provider(request: web.Request) -> web.Response:
    """A real round trip: the upstream's model list. Sets ``testStatus``."""
    conn = store.get(request.match_info["id"])
    client = services(request).router.session
    started = time.perf_counter()
    try:
        models = await list_models(client, conn)
    except UpstreamError as exc:
        store.set_test_status(conn.id, "error")
        _reload(request)
        latency = round((time.perf_counter() - started) * 1000, 1)
        return web.json_response({"ok": False, "latencyMs": latency, "error": exc.message})
    latency = round((time.perf_counter() - started) * 1000, 1)
    store.set_test_status(conn.id, "active")
    store.set_cached_models(conn.id, models)
    if not conn.models:
        store.set_models(conn.id, models)
    _reload(request)
    return web.json_response({"ok": True, "latencyMs": latency, "models": len(models)})


@routes.get("/api/providers/{id}/models")
async def provider_models(request: web.Request) -> web.Response:
    conn = store.get(request.match_info["id"])
    cached = store.get_cached_models(conn.id)
    if cached is None:
        try:
            models = await list_models(services(request).router.session, conn)
        except UpstreamError as exc:
            return web.json_response(
                {
                    "connectionId": conn.id,
                    "models": conn.models,
                    "cached": False,
                    "error": exc.message,
                }
            )
        cached = store.set_cached_models(conn.id, models)
    return web.json_response(cached.model_dump(by_alias=True, mode="json") | {"cached": True})
