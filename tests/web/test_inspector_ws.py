"""The inspector WebSocket hub: serialise once, bounded queues, slow clients dropped, clean
shutdown, and no cost at all without clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType, web

from router.store.db import close_database, open_database
from router.traffic.buffer import LiveBuffer
from router.traffic.service import Inspector
from tests.fakes.upstream import FakeUpstream
from tests.router.traffic.factory import make_record
from tests.web.harness import start_server
from web.inspector import HUB
from web.ws import Hub

P = "/api/tools/traffic-inspector"


class CountingDumps:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, obj: object) -> str:
        self.calls += 1
        return json.dumps(obj)


@pytest.fixture
def inspector(tmp_path: Path) -> AsyncIterator[Inspector]:
    open_database(tmp_path / "llmtap.db")
    yield Inspector(LiveBuffer(1000), None)
    close_database()


async def serve(hub: Hub) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/ws", hub.handle)

    async def close(_app: web.Application) -> None:
        await hub.close()

    app.on_shutdown.append(close)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/ws"


async def recv(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=30)
    assert msg.type == WSMsgType.TEXT, msg
    data: dict[str, Any] = json.loads(msg.data)
    return data


async def test_each_event_is_serialised_once_for_all_clients(inspector: Inspector) -> None:
    dumps = CountingDumps()
    hub = Hub(inspector, dumps=dumps)
    inspector.add(make_record(0))
    runner, url = await serve(hub)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(url) as a,
            session.ws_connect(url) as b,
        ):
            snap_a, snap_b = await recv(a), await recv(b)
            assert snap_a["type"] == snap_b["type"] == "snapshot"
            assert len(snap_a["data"]) == 1
            assert dumps.calls == 2  # one snapshot per client
            records = [make_record(n) for n in range(1, 6)]
            for rec in records:
                inspector.add(rec)
            inspector.update(records[0].model_copy(update={"status": 500}))
            inspector.clear()
            assert dumps.calls == 2 + 7  # each event once, whatever the number of clients
            got_a = [await recv(a) for _ in range(7)]
            got_b = [await recv(b) for _ in range(7)]
            assert got_a == got_b
            assert [m["type"] for m in got_a] == ["new"] * 5 + ["update", "clear"]
            assert [m["data"]["id"] for m in got_a[:5]] == [r.id for r in records]
            assert got_a[5]["data"]["status"] == 500
    finally:
        await runner.cleanup()


async def test_without_clients_nothing_is_serialised_and_memory_stays_bounded(
    inspector: Inspector,
) -> None:
    dumps = CountingDumps()
    hub = Hub(inspector, dumps=dumps)
    for n in range(20_000):
        inspector.add(make_record(n))
    assert len(inspector.buffer) == 1000
    assert dumps.calls == 0
    await hub.close()


async def test_a_slow_client_is_dropped_while_others_keep_receiving(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    server, webapp = await start_server(tmp_path / "data", fake_upstream, lanes=[])
    hub = webapp.app[HUB]
    hub.queue_size = 2  # tiny, so the slow client's backlog overflows quickly
    body = json.dumps({"model": "m", "messages": [], "pad": "x " * 100_000})
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(server.url + P + "/ws") as slow,
            session.ws_connect(server.url + P + "/ws") as normal,
        ):
            assert (await recv(normal))["type"] == "snapshot"
            assert hub.client_count == 2
            sent: list[str] = []
            # Lock-step with the normal client: its queue never holds more than one message,
            # while the slow one (never reading) backs up through TCP into its queue.
            for n in range(2000):
                rec = server.runtime.inspector.add(make_record(n, request_body=body))
                sent.append(rec.id)
                msg = await recv(normal)
                assert msg["type"] == "new" and msg["data"]["id"] == rec.id
                if hub.client_count == 1:
                    break
            assert hub.client_count == 1, "the slow client was never dropped"
            # the normal client is unaffected
            after = server.runtime.inspector.add(make_record(9999))
            assert (await recv(normal))["data"]["id"] == after.id
            # the slow client, reading at last, finds a close with "try again later"
            kinds: list[WSMsgType] = []
            while True:
                msg = await slow.receive(timeout=30)
                kinds.append(msg.type)
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
            assert kinds[-1] == WSMsgType.CLOSE
            assert slow.close_code == WSCloseCode.TRY_AGAIN_LATER
            # it got the snapshot and what fit before the drop, never the later events
            assert kinds.count(WSMsgType.TEXT) <= len(sent)
    finally:
        await webapp.done()
        await server.runtime.close()


async def test_shutdown_closes_every_socket(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    server, webapp = await start_server(tmp_path / "data", fake_upstream, lanes=[])
    hub = webapp.app[HUB]
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(server.url + P + "/ws") as ws,
        ):
            assert (await recv(ws))["type"] == "snapshot"
            # Shut down while the client reads, as a browser does: it answers the close frame
            # at once (a client that reads only after the server is gone sees its own reply
            # fail, and aiohttp reports that as 1006 whatever the server sent).
            stopping = asyncio.create_task(webapp.done())
            msg = await ws.receive(timeout=30)
            await stopping
            assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
            assert ws.close_code == WSCloseCode.GOING_AWAY
        assert hub.client_count == 0 and hub.closed
        assert not hub._tasks
        # the hub no longer listens: publishing costs nothing and raises nothing
        server.runtime.inspector.add(make_record(1))
    finally:
        await webapp.done()
        await server.runtime.close()
