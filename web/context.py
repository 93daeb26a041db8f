"""The services the aiohttp app shares, under one typed AppKey; built by the composition root."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from router.catalog import Catalog
from router.engine import Router
from router.settings import Settings


@dataclass
class Services:
    settings: Settings
    router: Router
    catalog: Catalog
    # Verifies a router API key; returns the key's id or None. Set when the store is open.
    verify_key: Callable[[str], str | None] = lambda _key: None
    started_at: float = field(default_factory=time.time)
    extras: dict[str, Any] = field(default_factory=dict)


SERVICES: web.AppKey[Services] = web.AppKey("llmtap.services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]
