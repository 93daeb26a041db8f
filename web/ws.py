"""The inspector WebSocket hub: a snapshot on connect, then every new/update/clear event,
serialised once and fanned out through one bounded queue and one sender task per client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, web

from router import jsonfast
from router.traffic.record import InterceptedRequest
from router.traffic.service import Inspector

log = logging.getLogger("llmtap.web.ws")

HEARTBEAT_S = 30.0
QUEUE_SIZE = 1000
CLOSE_TIMEOUT_S = 5.0
# The snapshot goes out in frames of at most this much, and no event frame is larger: common
# WebSocket clients refuse frames over 1 MiB. A record too big for a frame goes without its
# bodies, marked ``wsTruncated`` (the UI reads the whole record from GET requests/{id}).
SNAPSHOT_PAGE_BYTES = 256 * 1024
# Room a record's frame needs besides the record (the snapshot or event envelope).
_ENVELOPE_BYTES = 128
_BULKY = ("requestBody", "responseBody")
_BULKY_LLM = ("response", "conversation")


@dataclass(eq=False)
class _Client:
    ws: web.WebSocketResponse
    queue: asyncio.Queue[str]
    snapshot: list[str] = field(default_factory=list)  # pages, sent before the queue
    sender: asyncio.Task[None] | None = None
    dropped: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Hub:
    """Fans inspector events out to WebSocket clients without ever waiting on one.

    ``publish`` runs inside the capture path (synchronously, from the buffer's subscriber
    call), so it does the least possible: one JSON encode per event whatever the number of
    clients, then ``put_nowait`` of that same string on each client's queue. A client whose
    queue is full is dropped (closed with 1013 "try again later"): the browser reconnects and
    gets a fresh snapshot, and a slow tab never slows capture or the other clients.
    """

    def __init__(
        self,
        inspector: Inspector,
        *,
        queue_size: int = QUEUE_SIZE,
        heartbeat: float = HEARTBEAT_S,
        dumps: Callable[[object], str] = jsonfast.dumps_str,
    ) -> None:
        self.inspector = inspector
        self.queue_size = queue_size
        self.heartbeat = heartbeat
        self._dumps = dumps
        self._clients: set[_Client] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe = inspector.subscribe(self._on_event, wants=self._has_clients)
        self.closed = False

    def _has_clients(self) -> bool:
        return bool(self._clients)

    @property
    def client_count(self) -> int:
        return len(self._clients)

    # ------------------------------------------------------------------ publishing

    def _on_event(self, event: str, record: InterceptedRequest | None) -> None:
        if not self._clients:
            return  # nobody listening: not even the serialisation is paid
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is not None and running is not loop:
            # A capture thread outside the loop: hand the event over, never touch queues here.
            loop.call_soon_threadsafe(self._publish_event, event, record)
            return
        self._publish_event(event, record)

    def _publish_event(self, event: str, record: InterceptedRequest | None) -> None:
        if event == "clear" or record is None:
            self.publish({"type": "clear"})
        elif self._clients:
            # ``event`` is one of the buffer's fixed names ("new", "update"): no escaping needed.
            self._queue(f'{{"type": "{event}", "data": {self.record_json(record)}}}')

    def record_json(self, record: InterceptedRequest) -> str:
        """The record's JSON for a frame: whole when it fits in one, else without its bodies
        (``wsTruncated``, ``wsSize`` = the whole record's size in bytes)."""
        wire = record.to_wire()
        text = self._dumps(wire)
        limit = SNAPSHOT_PAGE_BYTES - _ENVELOPE_BYTES
        if len(text) * 4 <= limit or len(text.encode()) <= limit:  # chars * 4 >= UTF-8 bytes
            return text
        size = len(text.encode())
        slim = {key: value for key, value in wire.items() if key not in _BULKY}
        if isinstance(wire.get("llm"), dict):
            slim["llm"] = {k: v for k, v in wire["llm"].items() if k not in _BULKY_LLM}
        slim |= {"wsTruncated": True, "wsSize": size}
        text = self._dumps(slim)
        if len(text.encode()) <= limit:
            return text
        # Headers alone too big (a pathological record): what the list row needs, no more.
        keep = ("id", "source", "agent", "timestamp", "method", "scheme", "host", "port",
                "status", "error", "sourceModel", "mappedModel", "detectedKind", "sessionId")  # fmt: skip
        slim = {key: wire.get(key) for key in keep}
        slim["path"] = str(wire.get("path", ""))[:2048]
        slim |= {"wsTruncated": True, "wsSize": size}
        return self._dumps(slim)

    def publish(self, message: dict[str, object]) -> None:
        """Serialise ``message`` once and queue the same string for every client."""
        if self._clients:
            self._queue(self._dumps(message))

    def _queue(self, text: str) -> None:
        for client in list(self._clients):
            if client.dropped:
                continue
            try:
                client.queue.put_nowait(text)
            except asyncio.QueueFull:
                self._drop(client)

    def _drop(self, client: _Client) -> None:
        client.dropped = True
        self._clients.discard(client)
        log.info("inspector WebSocket client too slow (%d queued): dropped", self.queue_size)
        if client.sender is not None:
            client.sender.cancel()
        self._spawn(self._close(client, WSCloseCode.TRY_AGAIN_LATER, b"client too slow"))

    # ------------------------------------------------------------------ connections

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """The ``GET ws`` handler."""
        ws = web.WebSocketResponse(heartbeat=self.heartbeat, timeout=CLOSE_TIMEOUT_S)
        await ws.prepare(request)
        if self.closed:
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
            return ws
        self._loop = asyncio.get_running_loop()
        client = _Client(ws, asyncio.Queue(self.queue_size))
        # Snapshot and registration in the same loop step: no event is lost or doubled.
        client.snapshot = self.snapshot_pages()
        self._clients.add(client)
        client.sender = asyncio.create_task(self._send_loop(client))
        self._tasks.add(client.sender)
        client.sender.add_done_callback(self._tasks.discard)
        try:
            async for _msg in ws:
                pass  # clients only listen; reading keeps pings/pongs and close working
        finally:
            self._clients.discard(client)
            if client.sender is not None and not client.sender.done():
                client.sender.cancel()
            if not client.dropped:
                await self._close(client, WSCloseCode.OK, b"")
            else:
                await client.done.wait()
        return ws

    def snapshot_pages(self, page_bytes: int = SNAPSHOT_PAGE_BYTES) -> list[str]:
        """The buffer as ``{"type": "snapshot", "page": n, "more": bool, "data": [...]}``
        frames of about ``page_bytes`` each (each record serialised once). A client keeps the
        pages until ``more`` is false, then shows them as one snapshot."""
        items = [self.record_json(r) for r in self.inspector.list()]
        groups: list[list[str]] = [[]]
        size = 0
        for item in items:
            if groups[-1] and size + len(item) > page_bytes:
                groups.append([])
                size = 0
            groups[-1].append(item)
            size += len(item) + 1
        last = len(groups) - 1
        return [
            f'{{"type": "snapshot", "page": {n}, "more": {"true" if n < last else "false"}, '
            f'"data": [{",".join(group)}]}}'
            for n, group in enumerate(groups)
        ]

    async def _send_loop(self, client: _Client) -> None:
        try:
            while client.snapshot:
                await client.ws.send_str(client.snapshot.pop(0))
            while True:
                text = await client.queue.get()
                await client.ws.send_str(text)
        except asyncio.CancelledError:
            pass
        except (ConnectionError, RuntimeError) as exc:
            log.debug("inspector WebSocket send failed: %r", exc)
            self._clients.discard(client)
            self._spawn(self._close(client, WSCloseCode.OK, b""))

    async def _close(self, client: _Client, code: int, message: bytes) -> None:
        # Bounded: a client that stopped reading never answers the close handshake; aiohttp
        # then drops the connection when the timeout cancels the close.
        try:
            if not client.ws.closed:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await client.ws.close(code=code, message=message, drain=False)
        except Exception as exc:  # the peer may already be gone
            log.debug("closing inspector WebSocket failed: %r", exc)
        finally:
            client.done.set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """App cleanup: close every socket, stop every task, stop listening."""
        self.closed = True
        self._unsubscribe()
        clients = list(self._clients)
        self._clients.clear()
        for client in clients:
            if client.sender is not None:
                client.sender.cancel()
        await asyncio.gather(
            *(self._close(c, WSCloseCode.GOING_AWAY, b"server shutting down") for c in clients),
            return_exceptions=True,
        )
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
