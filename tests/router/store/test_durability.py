"""Nothing a client saw succeed is lost: a real ``llmtap up`` under router and proxy traffic
is killed (SIGKILL, SIGTERM, SIGINT), restarted on the same data dir, and the call-log rows
and recording-session records are counted against what the clients saw.

A SIGKILL may lose only calls still in flight or finished within the last 50 ms (issue 12):
the call-log row of a router call and the session records of router and proxied calls are
journaled (router/store/writer.py) and replayed at the restart. A proxied call's record and a
stream's row are journaled before the reply's end goes out; a whole router reply's row in the
loop step right after its bytes were written (router/engine/router.py), so the window is that
step, far inside the 50 ms. (While a session records, as here, the router call's inspector
record is journaled with its row.) SIGTERM and SIGINT lose nothing (the writer drains)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.addons.proc import Llmtap, start_llmtap
from tests.addons.test_http_proxy import wait_listening
from tests.fakes.upstream import FakeUpstream

P = "/api/tools/traffic-inspector"
KILL_WINDOW_S = 0.05  # what a kill -9 may lose: calls finished this close to it (issue 12)
CHAT = {"model": "oa/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@dataclass
class Seen:
    """What the clients saw succeed: id -> monotonic time the reply was complete."""

    router: dict[str, float] = field(default_factory=dict)
    proxy: dict[str, float] = field(default_factory=dict)


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as up:
        yield up


def _start(data_dir: Path) -> Llmtap:
    app = start_llmtap(data_dir, env={"LLMTAP_HTTP_PROXY_AUTOSTART": "true"})
    wait_listening(app.proxy_port)
    return app


async def _traffic(app: Llmtap, upstream: FakeUpstream, seen: Seen, stop: asyncio.Event) -> None:
    async def router_lane(stream: bool) -> None:
        async with httpx.AsyncClient(base_url=app.url, timeout=30) as client:
            while not stop.is_set():
                try:
                    # The whole reply, a stream to its end: what a client counts as success.
                    resp = await client.post(
                        "/v1/chat/completions", json={**CHAT, "stream": stream}
                    )
                except httpx.HTTPError:
                    return  # the process is gone
                if resp.status_code == 200:
                    call = resp.headers["X-OmniRoute-Request-Id"]
                    seen.router[call] = time.monotonic()

    async def proxy_lane(lane: int) -> None:
        proxy = f"http://127.0.0.1:{app.proxy_port}"
        async with httpx.AsyncClient(proxy=proxy, timeout=30) as client:
            n = 0
            while not stop.is_set():
                n += 1
                call = f"p{lane}-{n}"
                try:
                    resp = await client.post(
                        f"{upstream.url}/v1/chat/completions?call={call}",
                        json={
                            "model": "gpt-4o-mini",
                            "messages": [{"role": "user", "content": "x"}],
                        },
                    )
                except httpx.HTTPError:
                    return
                if resp.status_code == 200:
                    seen.proxy[call] = time.monotonic()

    await asyncio.gather(router_lane(False), router_lane(True), proxy_lane(0), proxy_lane(1))


async def _run_and_stop(
    tmp_path: Path, upstream: FakeUpstream, sig: int
) -> tuple[Seen, float, dict[str, set[str]], list[str]]:
    data_dir = tmp_path / "data"
    app = _start(data_dir)
    try:
        created = app.api(
            "POST", "/api/providers",
            json={"provider": "openai", "name": "oa", "url": upstream.url + "/v1",
                  "apiKey": "sk-test-durable-0123456789"},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        session = app.api("POST", f"{P}/sessions", json={"name": "durable", "profile": "all"})
        assert session.status_code == 201, session.text
        session_id = session.json()["id"]
        seen, stop = Seen(), asyncio.Event()
        traffic = asyncio.create_task(_traffic(app, upstream, seen, stop))
        # Until enough has gone through (bounded): the kill lands in the middle of traffic.
        deadline = time.monotonic() + 60
        while (len(seen.router) < 60 or len(seen.proxy) < 30) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        # Taken before the signal: a client that saw success before this moment saw it before
        # the process died (this process may be held off the CPU between the two lines).
        stopped_at = time.monotonic()
        app.proc.send_signal(sig)
        await asyncio.to_thread(app.proc.wait, 30)
        stop.set()
        await asyncio.wait_for(traffic, 30)
    finally:
        app.stop(signal.SIGKILL)
        stopped_log = app.log()
    assert len(seen.router) >= 60 and len(seen.proxy) >= 30, "not enough traffic went through"

    again = _start(data_dir)
    try:
        logs = again.api("GET", "/api/usage/call-logs", params={"limit": 1000}).json()
        assert logs["total"] <= 1000
        logged = {row["id"] for row in logs["logs"]}
        records = again.api("GET", f"{P}/sessions/{session_id}").json()["requests"]
    finally:
        assert again.stop() == 0, again.log()
    router_records = {r["id"] for r in records if r["source"] == "router"}
    proxy_calls = {r["path"].rpartition("call=")[2] for r in records if "call=" in r["path"]}
    present = {"call logs": logged, "router records": router_records, "proxy records": proxy_calls}
    # What the stopped instance warned about (its writer, its journal), for a failure's message.
    said = [line for line in stopped_log.splitlines() if "WARNING" in line or "ERROR" in line]
    return seen, stopped_at, present, said[-20:]


def _lost(seen: dict[str, float], present: set[str], before: float) -> list[str]:
    return sorted(k for k, t in seen.items() if t <= before and k not in present)


async def test_sigkill_loses_only_calls_in_flight(tmp_path: Path, upstream: FakeUpstream) -> None:
    seen, killed_at, present, said = await _run_and_stop(tmp_path, upstream, signal.SIGKILL)
    _assert_kept(seen, present, killed_at - KILL_WINDOW_S, said)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_sigterm_and_sigint_lose_nothing(
    tmp_path: Path, upstream: FakeUpstream, sig: int
) -> None:
    seen, stopped_at, present, said = await _run_and_stop(tmp_path, upstream, sig)
    _assert_kept(seen, present, stopped_at + 60, said)  # everything the clients saw


def _assert_kept(seen: Seen, present: dict[str, set[str]], before: float, said: list[str]) -> None:
    lost = {
        "call logs": _lost(seen.router, present["call logs"], before),
        "router records": _lost(seen.router, present["router records"], before),
        "proxy records": _lost(seen.proxy, present["proxy records"], before),
    }
    total = {"call logs": len(seen.router), "router records": len(seen.router),
             "proxy records": len(seen.proxy)}  # fmt: skip
    assert all(not v for v in lost.values()), (
        {k: f"{len(v)}/{total[k]}: {v[:3]}" for k, v in lost.items()},
        said,
    )
