"""Addon that serves the aiohttp app (router API, management API, UI) inside mitmproxy's loop."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from mitmproxy import ctx

log = logging.getLogger("llmtap.webapp")

# How long a stop (Ctrl-C, SIGTERM) waits for calls in flight before cancelling them. aiohttp's
# default is 60 s; a handler that never finishes (a stalled client body, a long stream) then
# held the process that long after the signal, longer than a service manager's stop timeout.
# A call cancelled here was never seen to succeed, so nothing a client saw is lost.
SHUTDOWN_GRACE_S = 10.0


def app_runner(app: web.Application) -> web.AppRunner:
    """The runner both ``up`` and ``up --gateway`` serve the app with. ``handler_cancellation``:
    a client that disconnects cancels its handler, and with it the upstream call (router.md
    case 11)."""
    return web.AppRunner(
        app, handler_cancellation=True, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S
    )


class WebApp:
    """Starts an AppRunner + TCPSite in ``running()`` and stops it in ``done()``."""

    def __init__(
        self,
        app: web.Application,
        host: str,
        port: int,
        on_started: Callable[[str, int], Awaitable[None] | None] | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.runner: web.AppRunner | None = None
        self.bound_port: int | None = None
        self.on_started = on_started
        self.error: str | None = None

    async def running(self) -> None:
        self.runner = app_runner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            # Recorded, not raised: the composition root sees it and stops the process with a
            # clear message instead of a traceback from mitmproxy's hook runner.
            self.error = f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
            await self.runner.cleanup()
            self.runner = None
            ctx.master.shutdown()  # without its API there is nothing to serve
            return
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else self.port
        if self.on_started is not None:
            result = self.on_started(self.host, self.bound_port)
            if result is not None:
                await result

    async def done(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
