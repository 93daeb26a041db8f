"""A real llmtap server for tests: the same Runtime (``addons.compose.build_runtime``) and app as
``llmtap up`` (minus mitmproxy), served by the real WebApp addon on 127.0.0.1:0, with providers
added through /api/providers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from addons.compose import build_runtime
from addons.webapp import WebApp
from router.settings import build
from tests.fakes.upstream import FakeUpstream
from web.app import create_app
from web.runtime import Runtime

# One connection per upstream format, all on the same fake upstream.
LANES = ["oa", "an", "ge"]
CONNECTIONS = {"oa": ("openai", "/v1"), "an": ("anthropic", "/v1"), "ge": ("gemini", "/v1beta")}
MODELS = {"oa": "oa/gpt-4o-mini", "an": "an/claude-sonnet-4", "ge": "ge/gemini-2.5-flash"}

# One tool, as each client format declares it.
WEATHER_TOOL_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
WEATHER_TOOL_RESPONSES = {"type": "function", **WEATHER_TOOL_OPENAI["function"]}
WEATHER_TOOL_ANTHROPIC = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": WEATHER_TOOL_OPENAI["function"]["parameters"],
}


@dataclass
class Server:
    url: str
    upstream: FakeUpstream
    runtime: Runtime
    connection_ids: dict[str, str]

    def model(self, lane: str) -> str:
        return MODELS[lane]

    async def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.url) as client:
            return await client.request(method, path, **kw)

    async def add_connection(self, name: str, url: str | None = None, **fields: Any) -> str:
        """POST an OpenAI-compatible connection (on the fake upstream unless ``url``); its id."""
        body = {"provider": "openai", "name": name, "url": url or self.upstream.url + "/v1"}
        resp = await self.api("POST", "/api/providers", json={**body, **fields})
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    async def call_logs(self, limit: int = 200) -> list[dict[str, Any]]:
        """The router's call log, newest first."""
        resp = await self.api("GET", "/api/usage/call-logs", params={"limit": limit})
        assert resp.status_code == 200, resp.text
        return resp.json()["logs"]  # type: ignore[no-any-return]

    async def new_call_logs(
        self, before: set[str], *, timeout: float = 20.0
    ) -> list[dict[str, Any]]:
        """Call-log rows not in ``before`` (ids), waiting for the store's writer to flush them:
        a client can hold its whole answer before the row is written."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            rows = [r for r in await self.call_logs() if r["id"] not in before]
            if rows or asyncio.get_running_loop().time() > deadline:
                return rows
            await asyncio.sleep(0.05)


async def start_server(
    data_dir: Path, upstream: FakeUpstream, *, lanes: list[str] | None = None, **settings: Any
) -> tuple[Server, WebApp]:
    runtime = await build_runtime(build(cli={"data_dir": data_dir, "port": 0, **settings}, env={}))
    webapp = WebApp(create_app(runtime), "127.0.0.1", 0)
    await webapp.running()
    assert webapp.bound_port is not None
    runtime.api_port = webapp.bound_port  # what announce() sets, without writing server.json
    url = f"http://127.0.0.1:{webapp.bound_port}"
    ids: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=url) as client:
        for lane in LANES if lanes is None else lanes:
            kind, path = CONNECTIONS[lane]
            resp = await client.post(
                "/api/providers",
                json={
                    "provider": kind,
                    "name": lane,
                    "url": upstream.url + path,
                    "apiKey": f"sk-test-{lane}-0123456789abcdef",
                },
            )
            assert resp.status_code == 201, resp.text
            ids[lane] = resp.json()["id"]
    return Server(url, upstream, runtime, ids), webapp


@pytest.fixture
async def server(fake_upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[Server]:
    srv, webapp = await start_server(tmp_path / "data", fake_upstream)
    try:
        yield srv
    finally:
        await webapp.done()
        await srv.runtime.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def module_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """One router and one fake upstream (every lane) shared by a whole test module.

    Starting them per test costs about half a second; a module of a hundred cases shares one.
    The module must run its tests on the module's loop
    (``pytestmark = pytest.mark.asyncio(loop_scope="module")``) and take ``shared_server``,
    which resets the fake upstream before each test.
    """
    async with FakeUpstream() as upstream:
        srv, webapp = await start_server(tmp_path_factory.mktemp("data"), upstream)
        try:
            yield srv
        finally:
            await webapp.done()
            await srv.runtime.close()


@pytest.fixture
def shared_server(module_server: Server) -> Server:
    module_server.upstream.reset()
    return module_server
