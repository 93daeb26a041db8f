"""The app's lifetime (web/app.py): the upstream session opens with the app and closes in its
cleanup, after every inspector WebSocket got a clean 1001 and the handlers ended."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from addons.compose import build_runtime
from addons.webapp import WebApp
from router.settings import build
from tests.fakes.upstream import FakeUpstream, Reply
from web.app import create_app

P = "/api/tools/traffic-inspector"


async def test_shutdown_closes_websockets_then_the_upstream_session(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    runtime = await build_runtime(build(cli={"data_dir": tmp_path / "data", "port": 0}, env={}))
    app = create_app(runtime)
    at_shutdown: dict[str, bool] = {}

    async def observe(_app: web.Application) -> None:  # after the hub's own on_shutdown
        client = runtime.router.client
        at_shutdown["session open"] = client is not None and not client.closed

    app.on_shutdown.append(observe)
    webapp = WebApp(app, "127.0.0.1", 0)
    assert runtime.router.client is None  # the app opens it
    await webapp.running()
    url = f"http://127.0.0.1:{webapp.bound_port}"
    try:
        session = runtime.router.client
        assert session is not None and not session.closed
        async with aiohttp.ClientSession() as http:
            # The session works: a routed call goes through it to the upstream.
            resp = await http.post(
                url + "/api/providers",
                json={"provider": "openai", "name": "oa", "url": fake_upstream.url + "/v1"},
            )
            assert resp.status == 201, await resp.text()
            fake_upstream.script(Reply.text("hello"))
            body = {"model": "oa/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
            resp = await http.post(url + "/v1/chat/completions", json=body)
            assert resp.status == 200, await resp.text()
            async with http.ws_connect(url + P + "/ws") as ws:
                first = await ws.receive(timeout=30)
                assert first.type == WSMsgType.TEXT
                # Shut down while the client reads, as a browser does (see test_inspector_ws).
                stopping = asyncio.create_task(webapp.done())
                msg = await ws.receive(timeout=30)
                await stopping
                assert msg.type == WSMsgType.CLOSE
                assert ws.close_code == WSCloseCode.GOING_AWAY
        assert at_shutdown == {"session open": True}
        assert session.closed and runtime.router.client is None
    finally:
        await webapp.done()
        await runtime.close()
    assert runtime.closed
    await runtime.close()  # closing twice is harmless (the composition root and a test may)
