"""The aiohttp app factory: every route table, the typed AppKeys, the error and security
middlewares, and the lifetime of what the app owns (the router's upstream session).

What the app serves (the Runtime) is built, wired and closed by the composition root
(:func:`addons.compose.build_runtime`), which outlives the app. Shutdown order: ``on_shutdown``
closes every inspector WebSocket with 1001 (going away), aiohttp then waits for the open
handlers, and only then does ``cleanup_ctx`` close the upstream session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from router.providers import make_client
from router.providers.session import UpstreamSession
from web import (
    api_bridge,
    api_combos,
    api_keys,
    api_providers,
    api_system,
    api_usage,
    inspector,
    inspector_resend,
    inspector_search,
    inspector_sessions,
    ui,
    v1,
)
from web.context import RUNTIME, SERVICES
from web.errors import error_middleware
from web.gateway import change_middleware
from web.runtime import Runtime
from web.security import security_middleware


def create_app(rt: Runtime) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, security_middleware, change_middleware],
        client_max_size=rt.settings.max_request_mb << 20,
    )
    app[SERVICES] = rt.services
    app[RUNTIME] = rt
    app.cleanup_ctx.append(upstream_session)
    v1.add_routes(app)
    app.router.add_routes(api_providers.routes)
    # Fixed paths before ``{id}`` ones, so ``/api/combos/metrics`` is never an id.
    for table in (api_keys.routes, api_combos.routes, api_usage.routes, api_system.routes):
        app.router.add_routes(table)
    app.router.add_routes(ui.routes)
    inspector.add_routes(app)
    # Fixed /search before the inspector's own routes take any {id}-like path.
    app.router.add_routes(inspector_search.routes)
    app.router.add_routes(inspector_resend.routes)
    app.router.add_routes(inspector_sessions.routes)
    api_bridge.add_routes(app)
    return app


async def upstream_session(app: web.Application) -> AsyncIterator[None]:
    """The router's one upstream ClientSession, open while the app runs. Closed in cleanup,
    after the handlers (streams included) and the WebSocket clients are done with it."""
    services = app[SERVICES]
    settings = services.settings
    router = services.router
    previous = router.client
    opened: list[UpstreamSession] = []

    def renew() -> None:
        # At start, and again when the upstream CA changes: calls already on the previous
        # session finish there (closing it now would cut their streams).
        opened.append(
            make_client(
                upstream_ca=settings.upstream_ca, connect_timeout=settings.connect_timeout_s
            )
        )
        router.client = opened[-1]

    renew()
    app[RUNTIME].renew_upstream = renew
    try:
        yield
    finally:
        app[RUNTIME].renew_upstream = None
        router.client = previous
        for session in opened:
            await session.close()
