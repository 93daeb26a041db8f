"""What the server hands each wire format's ``serve`` (one generation call) and the SSE
framing they share: one event (optionally named) as the bytes a real upstream sends."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NamedTuple

from aiohttp import web

from tests.fakes.upstream.reply import Reply

if TYPE_CHECKING:
    from tests.fakes.upstream.server import FakeUpstream


class Generation(NamedTuple):
    """One generation call: the server (for its stream and JSON senders), the request, the
    scripted reply, the JSON body, the model to answer as, and whether to stream."""

    up: FakeUpstream
    request: web.Request
    reply: Reply
    payload: dict[str, Any]
    model: str
    stream: bool


def sse_data(obj: Any, *, event: str | None = None, crlf: bool = False) -> bytes:
    nl = "\r\n" if crlf else "\n"
    head = f"event: {event}{nl}" if event else ""
    return f"{head}data: {json.dumps(obj, separators=(',', ':'))}{nl}{nl}".encode()
