"""The aiohttp app factory: every route table, the typed AppKeys, the error and security
middlewares. What the app serves (the Runtime) is opened and closed by the composition root
(``llmtap up``), which outlives the app."""

from __future__ import annotations

from aiohttp import web

from web import (
    api_bridge,
    api_combos,
    api_keys,
    api_providers,
    api_system,
    api_usage,
    inspector,
    ui,
    v1,
)
from web.context import RUNTIME, SERVICES
from web.errors import error_middleware
from web.runtime import Runtime
from web.security import security_middleware


def create_app(rt: Runtime) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, security_middleware],
        client_max_size=rt.settings.max_request_mb << 20,
    )
    app[SERVICES] = rt.services
    app[RUNTIME] = rt
    v1.add_routes(app)
    app.router.add_routes(api_providers.routes)
    # Fixed paths before ``{id}`` ones, so ``/api/combos/metrics`` is never an id.
    for table in (api_keys.routes, api_combos.routes, api_usage.routes, api_system.routes):
        app.router.add_routes(table)
    app.router.add_routes(ui.routes)
    inspector.add_routes(app)
    api_bridge.add_routes(app)
    return app
