"""Addon that serves the aiohttp app (router API, management API, UI) inside mitmproxy's loop."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from mitmproxy import ctx

log = logging.getLogger("llmtap.webapp")


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
        # handler_cancellation: a client that disconnects cancels its handler, and with it the
        # upstream call (router.md case 11).
        self.runner = web.AppRunner(self.app, handler_cancellation=True, access_log=None)
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
