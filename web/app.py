"""The aiohttp app factory: router API, management API, inspector, UI, one error middleware."""

from __future__ import annotations

from aiohttp import web

from web import api_bridge, api_manage, api_providers, inspector, ui, v1
from web.context import SERVICES, Services
from web.errors import error_middleware
from web.security import security_middleware


def create_app(svc: Services) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, security_middleware],
        client_max_size=svc.settings.max_request_mb << 20,
    )
    app[SERVICES] = svc
    v1.add_routes(app)
    app.router.add_routes(api_providers.routes)
    api_manage.add_routes(app)
    app.router.add_routes(ui.routes)
    inspector.add_routes(app)
    api_bridge.add_routes(app)
    return app
