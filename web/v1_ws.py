"""The Responses API over a WebSocket (``GET /v1/responses`` upgraded), as Codex speaks it.

Each text message from the client is a ``response.create``: a Responses request body plus
``"type"``. It goes through the same router path as ``POST /v1/responses`` (streamed), and every
event of the answer goes back as one text message holding exactly the JSON the POST endpoint
sends as an SSE event's data. An error before the answer starts is one ``error`` message with
the HTTP status it would have had (``{"type": "error", "status", "error": {...}}``), which
Codex maps like the HTTP error; the connection stays open for the next request.

A connection remembers its last request's whole input and the output items of its answer:
a ``previous_response_id`` naming that answer continues from there, the message carrying only
the new input items (what Codex sends on a reused connection). ``"generate": false`` (Codex's
prewarm) answers at once with an empty completed response, calling no model, so that the next
request can continue from its input. ``response.processed`` acknowledgements need no answer.
A plain GET (no upgrade) is answered 426, which Codex takes as "use HTTP" at once.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from router.bridge.divert import read_hop, strip_hop
from router.engine import Inbound
from router.errors import LlmtapError
from router.formats.sse import SSEParser
from web.context import Services, services
from web.security import HOP_SECRET

_SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("llmtap.v1_ws.sockets")
Authorize = Callable[[web.Request, Services], str | None]
_AUTHORIZE: web.AppKey[Authorize] = web.AppKey("llmtap.v1_ws.authorize")
_CREATE = "response.create"
_ACK = "response.processed"
_TERMINAL = ("response.completed", "response.incomplete", "response.failed")


class UpgradeRequired(LlmtapError):
    status = 426
    type = "invalid_request_error"
    code = "websocket_upgrade_required"


@dataclass(slots=True)
class _Last:
    """The connection's last answer: its id, the whole input it answered, its output items."""

    response_id: str
    input: list[Any]
    output: list[Any] = field(default_factory=list)


class _Connection:
    """One client's socket: requests in order, one at a time (Codex waits for each answer)."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.request = request
        self.ws = ws
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.hop = read_hop(headers, HOP_SECRET)
        strip_hop(headers)
        self.headers = headers
        self.key_id: str | None = None
        self.last: _Last | None = None

    async def send(self, payload: dict[str, Any] | str) -> bool:
        if self.ws.closed:
            return False
        text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
        try:
            await self.ws.send_str(text)
        except ConnectionError:
            return False
        return True

    async def error(
        self, status: int, message: str, err_type: str, code: str | None = None, **extra: Any
    ) -> None:
        err: dict[str, Any] = {"type": err_type, "message": message}
        if code:
            err["code"] = code
        await self.send({"type": "error", "status": status, "error": err, **extra})

    async def handle(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            await self.error(400, "a message must be a JSON object", "invalid_request_error")
            return
        if not isinstance(message, dict):
            await self.error(400, "a message must be a JSON object", "invalid_request_error")
            return
        kind = message.get("type")
        if kind == _ACK:
            return
        if kind != _CREATE:
            await self.error(
                400,
                f"unknown message type {kind!r}; send '{_CREATE}'",
                "invalid_request_error",
                "unknown_message_type",
            )
            return
        body = {k: v for k, v in message.items() if k not in ("type", "generate")}
        previous = body.pop("previous_response_id", None)
        new_input = body.get("input")
        items = [{"type": "message", "role": "user", "content": new_input}]
        if isinstance(new_input, list):
            items = new_input
        elif new_input is None:
            items = []
        if previous is not None:
            if self.last is None or previous != self.last.response_id:
                await self.error(
                    400,
                    f"previous response '{previous}' is not the last one on this connection",
                    "invalid_request_error",
                    "previous_response_not_found",
                )
                return
            items = [*self.last.input, *self.last.output, *items]
        body["input"] = items
        body["stream"] = True
        if message.get("generate") is False:
            await self._prewarm(body)
        else:
            await self._create(body)

    async def _prewarm(self, body: dict[str, Any]) -> None:
        resp_id = f"resp_{uuid.uuid4().hex[:24]}"
        response: dict[str, Any] = {
            "id": resp_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": body.get("model"),
            "output": [],
            "usage": None,
        }
        created = {**response, "status": "in_progress"}
        await self.send({"type": "response.created", "sequence_number": 0, "response": created})
        await self.send({"type": "response.completed", "sequence_number": 1, "response": response})
        self.last = _Last(resp_id, list(body["input"]))

    async def _create(self, body: dict[str, Any]) -> None:
        svc = services(self.request)
        inbound = Inbound(
            format="responses",
            body=body,
            path=self.request.path,
            api_key_id=self.key_id,
            headers=dict(self.headers),
            query=self.request.query_string,
            pinned=self.request.match_info.get("provider"),
        )
        if self.hop is not None:
            inbound.agent, inbound.source = self.hop.agent, self.hop.source
            inbound.model_override, inbound.effort_override = self.hop.model, self.hop.effort
            inbound.router_records = True  # the capture side records the socket, not its calls
        self.last = None  # an answer that does not complete cannot be continued from
        try:
            reply = await svc.router.handle(inbound)
        except LlmtapError as exc:
            await self.error(exc.status, exc.message, exc.type, exc.code, headers=dict(exc.headers))
            return
        if reply.stream is None:
            await self._whole(body, reply.status, reply.body or b"")
            return
        parser = SSEParser()
        final: dict[str, Any] | None = None
        stream = reply.stream
        try:
            async for chunk in stream:
                for event in parser.feed(chunk):
                    if not event.data.strip():
                        continue
                    if not await self.send(event.data):
                        return  # the client went away: closing the stream cancels the call
                    if event.event in _TERMINAL or (
                        event.event is None and any(t in event.data for t in _TERMINAL)
                    ):
                        final = _terminal(event.data) or final
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        if final is not None and final.get("status") in ("completed", "incomplete"):
            output = final.get("output")
            self.last = _Last(
                str(final.get("id") or ""),
                list(body["input"]),
                list(output) if isinstance(output, list) else [],
            )

    async def _whole(self, body: dict[str, Any], status: int, raw: bytes) -> None:
        """A reply that did not stream (an upstream answering JSON): its response object,
        told as the two events that bracket every answer."""
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if status >= 400 or not isinstance(data, dict) or data.get("object") != "response":
            error = data.get("error") if isinstance(data, dict) else None
            error = error if isinstance(error, dict) else {}
            await self.error(
                status if status >= 400 else 502,
                str(error.get("message") or "the upstream answer is not a Responses object"),
                str(error.get("type") or "api_error"),
            )
            return
        created = {**data, "status": "in_progress", "output": []}
        await self.send({"type": "response.created", "sequence_number": 0, "response": created})
        await self.send({"type": "response.completed", "sequence_number": 1, "response": data})
        output = data.get("output")
        self.last = _Last(
            str(data.get("id") or ""),
            list(body["input"]),
            list(output) if isinstance(output, list) else [],
        )


def _terminal(data: str) -> dict[str, Any] | None:
    """The response object of a terminal event, else None."""
    try:
        event = json.loads(data)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("type") not in _TERMINAL:
        return None
    response = event.get("response")
    return response if isinstance(response, dict) else None


def _is_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


async def responses_ws(request: web.Request) -> web.StreamResponse:
    """The Responses API over a WebSocket: a response.create message per call, its events a
    message each (426 without the upgrade)."""
    if not _is_upgrade(request):
        raise UpgradeRequired("GET /v1/responses is the WebSocket transport: send an upgrade")
    svc = services(request)
    ws = web.WebSocketResponse(max_msg_size=svc.settings.max_request_mb << 20, compress=True)
    conn = _Connection(request, ws)
    if conn.hop is None:
        # the HTTP endpoints' API-key rule; refused at the handshake, as Codex expects
        conn.key_id = request.app[_AUTHORIZE](request, svc)
    await ws.prepare(request)
    sockets = request.app[_SOCKETS]
    sockets.add(ws)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await conn.handle(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await conn.error(400, "messages are JSON text", "invalid_request_error")
    finally:
        sockets.discard(ws)
    return ws


async def _close_all(app: web.Application) -> None:
    sockets: set[web.WebSocketResponse] = app[_SOCKETS]
    for ws in list(sockets):
        await ws.close(code=1001, message=b"server shutting down")


def add_routes(app: web.Application, paths: list[str], authorize: Authorize) -> None:
    """``authorize``: the HTTP endpoints' API-key rule (the key id, or raises)."""
    app[_SOCKETS] = set()
    app[_AUTHORIZE] = authorize
    app.on_shutdown.append(_close_all)
    for path in paths:
        app.router.add_get(path, responses_ws)
