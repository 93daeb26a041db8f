"""The team gateway's web side: a change made through this instance's management API is
announced to the other instances sharing the database (store/shared.py)."""

from __future__ import annotations

import logging

from aiohttp import web

from web.context import RUNTIME
from web.security import INGEST_PATH, Handler, is_protected

log = logging.getLogger("llmtap.gateway")

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@web.middleware
async def change_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """After a successful write to the management API, tell the other instances. Coarse on
    purpose: every write reloads what the others cache, so no handler can forget to."""
    response = await handler(request)
    if (
        request.method in _WRITES
        and response.status < 400
        and is_protected(request.path)
        and request.path != INGEST_PATH
    ):
        rt = request.app.get(RUNTIME)
        if rt is not None and rt.settings.shared_database:
            try:
                rt.changed()
            except Exception:  # the change is stored; only the others' copies are stale
                log.exception("could not announce a configuration change")
    return response
