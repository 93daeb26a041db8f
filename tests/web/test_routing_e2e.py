"""Routing through /v1 with several real upstreams: the traffic split each strategy promises,
failover, circuit breakers, maxConcurrent, and state that survives a restart."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from addons.webapp import WebApp
from tests.fakes.upstream import FakeUpstream, Reply
from tests.web.harness import Server, start_server

NAMES = ("a", "b", "c")


@dataclass
class Fleet:
    server: Server
    webapp: WebApp
    upstreams: dict[str, FakeUpstream]
    conn: dict[str, str]  # name -> connection id
    data_dir: Path
    http: httpx.AsyncClient

    async def chat(self, model: str, **extra: Any) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
        return await self.http.post(self.server.url + "/v1/chat/completions", json=body)

    def hits(self) -> Counter[str]:
        return Counter(
            {
                name: sum(1 for r in up.requests if r.path.endswith("/chat/completions"))
                for name, up in self.upstreams.items()
            }
        )

    async def combo(self, name: str, strategy: str, nodes: list[dict[str, Any]]) -> dict[str, Any]:
        resp = await self.server.api(
            "POST", "/api/combos", json={"name": name, "strategy": strategy, "nodes": nodes}
        )
        assert resp.status_code == 201, resp.text
        return resp.json()  # type: ignore[no-any-return]

    def node(self, name: str, **kw: Any) -> dict[str, Any]:
        return {"connectionId": self.conn[name], "model": f"model-{name}", **kw}


async def start_fleet(
    data_dir: Path, upstreams: dict[str, FakeUpstream], *, add: bool = True
) -> Fleet:
    """A server with one OpenAI-compatible connection per upstream (``add=False``: the
    connections are already in the data dir, from a previous run)."""
    server, webapp = await start_server(data_dir, next(iter(upstreams.values())), lanes=[])
    if add:
        for name, up in upstreams.items():
            body = {"provider": "openai", "name": name, "url": up.url + "/v1"}
            resp = await server.api("POST", "/api/providers", json=body)
            assert resp.status_code == 201, resp.text
    listed = (await server.api("GET", "/api/providers")).json()["connections"]
    conn = {c["name"]: c["id"] for c in listed}
    limits = httpx.Limits(max_connections=100)
    http = httpx.AsyncClient(timeout=30, limits=limits)
    return Fleet(server, webapp, upstreams, conn, data_dir, http)


async def stop_fleet(fleet: Fleet) -> None:
    await fleet.http.aclose()
    await fleet.webapp.done()
    await fleet.server.runtime.close()


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    ups = {name: await FakeUpstream().start() for name in NAMES}
    f = await start_fleet(tmp_path / "data", ups)
    try:
        yield f
    finally:
        await stop_fleet(f)
        for up in ups.values():
            await up.close()


async def test_round_robin_rotates_exactly(fleet: Fleet) -> None:
    await fleet.combo("rr", "round-robin", [fleet.node(n) for n in NAMES])
    order = []
    for _ in range(9):
        resp = await fleet.chat("rr")
        assert resp.status_code == 200
        order.append(resp.headers["x-omniroute-provider"])
    assert order == ["a", "b", "c"] * 3


async def test_round_robin_position_survives_restart(fleet: Fleet) -> None:
    await fleet.combo("rr", "round-robin", [fleet.node(n) for n in NAMES])
    for _ in range(2):
        await fleet.chat("rr")
    await stop_fleet(fleet)
    again = await start_fleet(fleet.data_dir, fleet.upstreams, add=False)
    try:
        # Connections came back from the database with the same ids.
        resp = await again.chat("rr")
        assert resp.headers["x-omniroute-provider"] == "c"
    finally:
        # the fixture closes these
        fleet.webapp, fleet.server, fleet.http = again.webapp, again.server, again.http


async def test_weighted_split_is_three_to_one(fleet: Fleet) -> None:
    await fleet.combo("w", "weighted", [fleet.node("a", weight=3), fleet.node("b", weight=1)])
    first = Counter()
    for _ in range(400):
        resp = await fleet.chat("w")
        assert resp.status_code == 200
        first[resp.headers["x-omniroute-provider"]] += 1
    # Binomial(400, 0.75): mean 300, sd ~8.7. Five sigma keeps this from ever flaking.
    assert abs(first["a"] - 300) < 5 * 8.7, first


async def test_least_used_balances(fleet: Fleet) -> None:
    await fleet.combo("lu", "least-used", [fleet.node(n) for n in NAMES])
    for _ in range(30):
        assert (await fleet.chat("lu")).status_code == 200
    assert fleet.hits() == Counter({"a": 10, "b": 10, "c": 10})


async def test_priority_fails_over_on_500_and_records_attempts(fleet: Fleet) -> None:
    await fleet.combo("p", "priority", [fleet.node("a", priority=0), fleet.node("b", priority=1)])
    fleet.upstreams["a"].script(Reply.error(500, "boom"))
    resp = await fleet.chat("p")
    assert resp.status_code == 200
    assert resp.headers["x-omniroute-provider"] == "b"
    assert resp.headers["x-omniroute-fallback-attempts"] == "1"
    fleet.server.runtime.writer.flush(5)
    logs = (await fleet.server.api("GET", "/api/usage/call-logs?limit=1")).json()
    row = logs["logs"][0] if isinstance(logs, dict) else logs[0]
    assert [a["provider"] for a in row["attempts"]] == ["a", "b"]
    assert row["attempts"][0]["status"] == 500


@pytest.mark.parametrize(
    "failure",
    [
        Reply.error(429, "rate limited", headers={"retry-after": "30"}),
        Reply.error(503, "overloaded"),
        Reply.text("slow", delay_first=3),
    ],
    ids=["429", "503", "timeout"],
)
async def test_failover_kinds(fleet: Fleet, failure: Reply) -> None:
    fleet.server.runtime.router.timeouts.first_byte = 0.5
    await fleet.combo("p", "priority", [fleet.node("a", priority=0), fleet.node("b", priority=1)])
    fleet.upstreams["a"].script(failure)
    resp = await fleet.chat("p")
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-omniroute-provider"] == "b"


async def test_failover_on_connection_refused(fleet: Fleet) -> None:
    await fleet.upstreams["a"].close()
    await fleet.combo("p", "priority", [fleet.node("a", priority=0), fleet.node("b", priority=1)])
    resp = await fleet.chat("p")
    assert resp.status_code == 200
    assert resp.headers["x-omniroute-provider"] == "b"


async def test_client_error_does_not_fail_over(fleet: Fleet) -> None:
    await fleet.combo("p", "priority", [fleet.node("a", priority=0), fleet.node("b", priority=1)])
    fleet.upstreams["a"].script(Reply.error(400, "your request is malformed"))
    resp = await fleet.chat("p")
    assert resp.status_code == 400
    assert "malformed" in resp.json()["error"]["message"]
    assert fleet.hits()["b"] == 0


async def test_rate_limited_connection_cools_down(fleet: Fleet) -> None:
    await fleet.combo("p", "priority", [fleet.node("a", priority=0), fleet.node("b", priority=1)])
    fleet.upstreams["a"].script(Reply.error(429, "slow down", headers={"retry-after": "60"}))
    await fleet.chat("p")
    before = fleet.hits()["a"]
    for _ in range(3):
        resp = await fleet.chat("p")
        assert resp.headers["x-omniroute-provider"] == "b"
    assert fleet.hits()["a"] == before, "a connection cooling down after 429 is skipped"


async def test_breaker_opens_probes_half_open_and_closes(fleet: Fleet) -> None:
    guard = fleet.server.runtime.guard
    clock = [1000.0]
    guard.breakers.clock = lambda: clock[0]
    await fleet.combo("p", "priority", [fleet.node("a", priority=0), fleet.node("b", priority=1)])
    threshold = guard.breakers.settings.failure_threshold
    fleet.upstreams["a"].script(*[Reply.error(502, "bad gateway")] * threshold)
    for _ in range(threshold):
        assert (await fleet.chat("p")).headers["x-omniroute-provider"] == "b"
    assert guard.breakers.state(fleet.conn["a"]).value.lower() == "open"
    hits_a = fleet.hits()["a"]
    assert (await fleet.chat("p")).headers["x-omniroute-provider"] == "b"
    assert fleet.hits()["a"] == hits_a, "an open breaker is skipped"
    plan = await fleet.server.api("POST", "/api/combos/test", json={"model": "p"})
    assert "breaker" in plan.text
    clock[0] += guard.breakers.settings.cooldown_s + 1
    resp = await fleet.chat("p")  # the half-open probe goes to a, which now answers
    assert resp.headers["x-omniroute-provider"] == "a"
    assert guard.breakers.state(fleet.conn["a"]).value.lower() == "closed"


async def test_p2c_never_picks_an_open_breaker(fleet: Fleet) -> None:
    guard = fleet.server.runtime.guard
    await fleet.combo("two", "p2c", [fleet.node(n) for n in NAMES])
    for _ in range(guard.breakers.settings.failure_threshold):
        guard.breakers.on_failure(fleet.conn["c"], True)
    for _ in range(40):
        resp = await fleet.chat("two")
        assert resp.headers["x-omniroute-provider"] in ("a", "b")
    assert fleet.hits()["c"] == 0


async def test_max_concurrent_is_respected_under_50_requests(fleet: Fleet) -> None:
    resp = await fleet.server.api(
        "PATCH", f"/api/providers/{fleet.conn['a']}", json={"maxConcurrent": 2}
    )
    assert resp.status_code == 200
    up = fleet.upstreams["a"]
    up.script(*[Reply.text("ok", delay_first=0.05)] * 50)
    results = await asyncio.gather(*[fleet.chat("a/m") for _ in range(50)])
    assert all(r.status_code == 200 for r in results)
    assert up.peak_in_flight == 2, up.peak_in_flight
