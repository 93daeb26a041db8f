"""What the aiohttp app shares, under typed AppKeys set by :func:`web.app.create_app`: the core
services (settings, router, catalog) and the process's Runtime (inspector, writers, capture
controls), plus the accessors handlers use."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import BaseModel

from router.catalog import Catalog
from router.engine import Router
from router.settings import Settings

if TYPE_CHECKING:  # the Runtime is built from these services; this module only names it
    from web.runtime import Runtime


@dataclass
class Services:
    settings: Settings
    router: Router
    catalog: Catalog
    # Verifies a router API key; returns the key's id or None. Set when the store is open.
    verify_key: Callable[[str], str | None] = lambda _key: None
    started_at: float = field(default_factory=time.time)


SERVICES: web.AppKey[Services] = web.AppKey("llmtap.services", Services)
RUNTIME: web.AppKey[Runtime] = web.AppKey("llmtap.runtime")


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def reply(model: BaseModel, status: int = 200) -> web.Response:
    """A response model as camelCase JSON (the same model the OpenAPI spec shows)."""
    return web.json_response(model.model_dump(by_alias=True, mode="json"), status=status)
