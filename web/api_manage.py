"""The management API's shared helpers and the one place its route tables are registered."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import BaseModel

from web.context import services

if TYPE_CHECKING:
    from web.runtime import Runtime


def reply(model: BaseModel, status: int = 200) -> web.Response:
    """A response model as camelCase JSON (the same model the OpenAPI spec shows)."""
    return web.json_response(model.model_dump(by_alias=True, mode="json"), status=status)


def runtime(request: web.Request) -> Runtime:
    rt: Runtime = services(request).extras["runtime"]
    return rt


def add_routes(app: web.Application) -> None:
    """Keys, combos, models, fallback, resilience, usage, pricing, monitoring, settings, spec.
    Fixed paths are added before ``{id}`` ones so ``/api/combos/metrics`` is never an id."""
    from web import api_combos, api_keys, api_system, api_usage

    for table in (api_keys.routes, api_combos.routes, api_usage.routes, api_system.routes):
        app.router.add_routes(table)
