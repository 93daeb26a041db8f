"""A team gateway: real ``llmtap up --gateway`` processes sharing one throwaway PostgreSQL
(tests/fakes/postgres.py) and one fake upstream, driven over loopback like a team would."""

from __future__ import annotations

import asyncio
import collections
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.addons.proc import Llmtap, free_port, llmtap_argv, start_llmtap
from tests.fakes.upstream import FakeUpstream, Reply
from tests.web import browser

browser_context = browser.browser_context  # the UI tests' headless Chromium, as a fixture here

TOKEN = "team-management-token-0123456789"
HEADERS = {"X-Llmtap-Token": TOKEN}


def chat(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as up:
        yield up


class Team:
    """N gateway instances on one database, each with its own data dir."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.tmp_path = tmp_path
        self.url = url
        self.instances: list[Llmtap] = []

    def start(self, n: int, *extra: str, **env: str) -> list[Llmtap]:
        procs = [
            start_llmtap(
                self.tmp_path / f"gw{len(self.instances) + i}" / "data",
                "--gateway",
                "--database-url",
                self.url,
                *extra,
                env={"LLMTAP_MANAGEMENT_TOKEN": TOKEN, **env},
                wait=False,
            )
            for i in range(n)
        ]
        self.instances += procs
        for inst in procs:
            wait_healthy(inst)
        return procs

    def stop(self) -> None:
        for inst in self.instances:
            inst.stop()


def wait_healthy(inst: Llmtap, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if inst.proc.poll() is not None:
            raise AssertionError(f"gateway exited early ({inst.proc.returncode}):\n{inst.log()}")
        try:
            if httpx.get(inst.url + "/v1", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"gateway not healthy in {timeout}s:\n{inst.log()}")


def api(inst: Llmtap, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, inst.url + path, headers=HEADERS, timeout=30, **kw)


@pytest.fixture
def team(tmp_path: Path, postgres_url: str) -> Iterator[Team]:
    t = Team(tmp_path, postgres_url)
    try:
        yield t
    finally:
        t.stop()


def add_provider(
    inst: Llmtap, upstream: FakeUpstream, name: str = "oa", **fields: Any
) -> dict[str, Any]:
    created = api(
        inst, "POST", "/api/providers",
        json={"provider": "openai", "name": name, "url": upstream.url + "/v1",
              "apiKey": "sk-test-gateway-0123456789", **fields},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    data: dict[str, Any] = created.json()
    return data


async def test_gateway_serves_api_and_ui_without_capture(
    team: Team, upstream: FakeUpstream
) -> None:
    proxy_port = free_port()
    (gw,) = team.start(1, LLMTAP_HTTP_PROXY_AUTOSTART="true", LLMTAP_PROXY_PORT=str(proxy_port))
    assert "gateway" in gw.log()
    add_provider(gw, upstream)
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        assert (await client.get("/")).status_code == 200  # the UI
        # The management API wants the shared token, even from loopback.
        assert (await client.get("/api/providers")).status_code == 401
        resp = await client.post("/v1/chat/completions", json=chat("oa/gpt-4o-mini"))
        assert resp.status_code == 200, resp.text
        # No capture listener, although the settings asked for the HTTP proxy to start.
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{proxy_port}/", timeout=2)
    assert not (gw.data_dir / "ca").exists()  # no mitmproxy, so no CA either


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "requireApiKey"),
        ({"LLMTAP_REQUIRE_API_KEY": "true"}, "management token"),
    ],
)
def test_non_loopback_gateway_refuses_to_start_unprotected(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    import os

    argv = llmtap_argv(
        "up", "--gateway", "--host", "0.0.0.0", "--port", "0",
        "--data-dir", str(tmp_path / "data"),
    )  # fmt: skip
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LLMTAP_")}
    done = subprocess.run(
        argv, env={**full_env, "PYTHONPATH": str(Path(__file__).parents[2]), **env},
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr


async def first_status(
    client: httpx.AsyncClient, wanted: Callable[[int], bool]
) -> tuple[int, float]:
    """Chat calls every 20 ms until one answers a ``wanted`` status, for 5 s at most (the
    caller's assertion is the promise): that status and the seconds it took."""
    since = time.monotonic()
    status = 0
    while time.monotonic() - since < 5:  # bounded
        resp = await client.post("/v1/chat/completions", json=chat("oa/gpt-4o-mini"))
        status = resp.status_code
        if wanted(status):
            break
        await asyncio.sleep(0.02)
    return status, time.monotonic() - since


async def test_provider_added_on_one_is_used_by_the_other_within_a_second(
    team: Team, upstream: FakeUpstream
) -> None:
    a, b = team.start(2)
    async with httpx.AsyncClient(base_url=b.url, timeout=30) as client:
        before = await client.post("/v1/chat/completions", json=chat("oa/gpt-4o-mini"))
        assert before.status_code == 404, before.text
        add_provider(a, upstream)
        status, seen_after = await first_status(client, lambda s: s == 200)
    assert status == 200
    assert seen_after < 1.0, f"instance b used the new provider only after {seen_after:.2f}s"


async def test_key_revoked_on_one_stops_working_on_the_other_within_a_second(
    team: Team, upstream: FakeUpstream
) -> None:
    """b keeps the keys it verified in memory (no database round trip per call); a key
    revoked through a is refused by b within the same 1 s as any configuration change."""
    a, b = team.start(2, LLMTAP_REQUIRE_API_KEY="true")
    add_provider(a, upstream)
    created = api(a, "POST", "/api/keys", json={"label": "alice"})
    assert created.status_code == 201, created.text
    key_id, key = created.json()["id"], created.json()["key"]
    await asyncio.sleep(1.0)
    async with httpx.AsyncClient(
        base_url=b.url, timeout=30, headers={"Authorization": f"Bearer {key}"}
    ) as client:
        for _ in range(3):  # verified once, then served from b's memory
            resp = await client.post("/v1/chat/completions", json=chat("oa/gpt-4o-mini"))
            assert resp.status_code == 200, resp.text
        revoked = api(a, "PATCH", f"/api/keys/{key_id}", json={"isActive": False})
        assert revoked.status_code == 200, revoked.text
        status, refused_after = await first_status(client, lambda s: s != 200)
    assert status == 401
    assert refused_after < 1.0, f"b still took the revoked key after {refused_after:.2f}s"


async def test_round_robin_splits_exactly_across_three_instances(
    team: Team, upstream: FakeUpstream
) -> None:
    gws = team.start(3)
    conn = add_provider(gws[0], upstream)
    combo = api(
        gws[1], "POST", "/api/combos",
        json={"name": "rr", "strategy": "round-robin",
              "nodes": [{"connectionId": conn["id"], "model": m} for m in ("m1", "m2", "m3")]},
    )  # fmt: skip
    assert combo.status_code == 201, combo.text
    await asyncio.sleep(1.0)  # every instance has the combo (the test above holds the 1 s)

    async def lane(inst: Llmtap, calls: int) -> list[int]:
        async with httpx.AsyncClient(base_url=inst.url, timeout=30) as client:
            out = []
            for _ in range(calls):
                resp = await client.post("/v1/chat/completions", json=chat("rr"))
                out.append(resp.status_code)
            return out

    # 300 calls, 100 per instance, four concurrent lanes each.
    results = await asyncio.gather(*(lane(inst, 25) for inst in gws for _ in range(4)))
    assert [s for r in results for s in r] == [200] * 300
    models = collections.Counter(
        r.json["model"] for r in upstream.requests if r.path.endswith("/chat/completions")
    )
    assert models == {"m1": 100, "m2": 100, "m3": 100}

    # Every instance's calls are in the one call log and in the usage analytics, read
    # through any instance.
    for inst in gws:
        deadline = time.monotonic() + 10
        total = 0
        while time.monotonic() < deadline:
            usage = api(inst, "GET", "/api/usage/analytics", params={"period": "day"})
            total = usage.json()["totals"]["requests"]
            if total >= 300:
                break
            await asyncio.sleep(0.1)
        assert total == 300
        assert {m: v["requests"] for m, v in usage.json()["byModel"].items()} == {
            "m1": 100,
            "m2": 100,
            "m3": 100,
        }
        logs = api(inst, "GET", "/api/usage/call-logs", params={"limit": 1000}).json()
        assert logs["total"] == 300
        assert len({row["id"] for row in logs["logs"]}) == 300


async def test_strict_random_deals_each_deck_once_across_three_instances(
    team: Team, upstream: FakeUpstream
) -> None:
    """Three instances share one strict-random combo of four members. Each round sends four
    calls at once, spread over the instances: every round is one whole deck (each member
    once, none twice), exactly as one instance would deal it."""
    gws = team.start(3)
    conn = add_provider(gws[0], upstream)
    members = ["m1", "m2", "m3", "m4"]
    combo = api(
        gws[1], "POST", "/api/combos",
        json={"name": "deck", "strategy": "strict-random",
              "nodes": [{"connectionId": conn["id"], "model": m} for m in members]},
    )  # fmt: skip
    assert combo.status_code == 201, combo.text
    await asyncio.sleep(1.0)  # every instance has the combo
    clients = [httpx.AsyncClient(base_url=inst.url, timeout=30) for inst in gws]
    rounds: list[list[str]] = []
    try:
        for r in range(25):
            before = len(upstream.requests)
            replies = await asyncio.gather(
                *(
                    clients[(r * len(members) + j) % len(clients)].post(
                        "/v1/chat/completions", json=chat("deck")
                    )
                    for j in range(len(members))
                )
            )
            assert [resp.status_code for resp in replies] == [200] * len(members)
            rounds.append([req.json["model"] for req in upstream.requests[before:]])
    finally:
        for client in clients:
            await client.aclose()
    assert all(sorted(dealt) == members for dealt in rounds), rounds
    assert len({tuple(dealt) for dealt in rounds}) > 1  # shuffled, not a fixed rotation


async def test_usage_through_either_instance_shows_both_instances_calls(
    team: Team, upstream: FakeUpstream, browser_context: Any
) -> None:
    """Calls served by a and by b are in the call log, the analytics and the usage page of
    each of them. (Without Chromium this skips; the round-robin test above still reads the
    call log and analytics through every instance.)"""
    from playwright.async_api import expect

    a, b = team.start(2)
    add_provider(a, upstream)
    await asyncio.sleep(1.0)
    served: dict[str, set[str]] = {}
    for name, inst, model, calls in (("a", a, "gpt-4o-mini", 3), ("b", b, "gpt-4o", 2)):
        async with httpx.AsyncClient(base_url=inst.url, timeout=30) as client:
            for _ in range(calls):
                resp = await client.post("/v1/chat/completions", json=chat(f"oa/{model}"))
                assert resp.status_code == 200, resp.text
                served.setdefault(name, set()).add(resp.headers["X-OmniRoute-Request-Id"])
    everyone = served["a"] | served["b"]
    for inst in (a, b):
        deadline = time.monotonic() + 10  # the writer batches rows off the request path
        logged: set[str] = set()
        while time.monotonic() < deadline and not everyone <= logged:
            logs = api(inst, "GET", "/api/usage/call-logs", params={"limit": 100}).json()
            logged = {row["id"] for row in logs["logs"]}
            await asyncio.sleep(0.1)
        assert logged == everyone
        analytics = api(inst, "GET", "/api/usage/analytics", params={"period": "day"}).json()
        assert analytics["totals"]["requests"] == 5
        assert {m: v["requests"] for m, v in analytics["byModel"].items()} == {
            "gpt-4o-mini": 3,
            "gpt-4o": 2,
        }
    # The usage page: the UI of either instance counts all five calls.
    for inst in (a, b):
        page = await browser_context.new_page()
        await page.goto(f"{inst.url}/?token={TOKEN}")
        await page.locator(".view-tab[data-view=router]").click()
        await expect(page.locator("#rt-usage #u-requests")).to_have_text("5", timeout=15_000)
        await page.close()


def test_one_instance_stopping_leaves_the_teams_recording_session_open(team: Team) -> None:
    """A session lives in the shared store: an instance's clean stop does not end it (the
    others go on serving and recording); stopping it through the API does."""
    a, b = team.start(2)
    sessions = "/api/tools/traffic-inspector/sessions"
    created = api(a, "POST", sessions, json={"name": "team"})
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    assert b.stop() == 0  # SIGINT: a clean shutdown
    assert api(a, "GET", f"{sessions}/{sid}").json()["ended_at"] is None
    stopped = api(a, "PATCH", f"{sessions}/{sid}", json={"action": "stop"})
    assert stopped.status_code == 200 and stopped.json()["ended_at"] is not None


def test_instances_starting_at_once_migrate_once(tmp_path: Path, postgres_url: str) -> None:
    """Three instances start at once on an empty database, each told to add the same
    provider: the schema is migrated once and the provider exists once."""
    import psycopg

    team = Team(tmp_path, postgres_url)
    try:
        team.start(3, "--provider", "openai=http://127.0.0.1:9/v1,name=shared")
    finally:
        team.stop()
    with psycopg.connect(postgres_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
        names = [r[0] for r in conn.execute("SELECT name FROM provider_connection")]
    assert sorted(versions) == list(range(1, len(versions) + 1))
    assert len(versions) == len(set(versions))
    assert names == ["shared"]


async def test_breaker_opened_by_one_is_honoured_by_the_other(
    team: Team, upstream: FakeUpstream
) -> None:
    a, b = team.start(2)
    add_provider(a, upstream)
    settings = api(
        a, "PATCH", "/api/resilience", json={"failureThreshold": 1, "cooldownSeconds": 2}
    )
    assert settings.status_code == 200, settings.text
    upstream.script(Reply.error(500, "upstream is down"))
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=30) as ca,
        httpx.AsyncClient(base_url=b.url, timeout=30) as cb,
    ):
        failed = await ca.post("/v1/chat/completions", json=chat("oa/gpt-4o-mini"))
        assert failed.status_code >= 500, failed.text
        sent = len(upstream.requests)
        await asyncio.sleep(0.5)  # the breaker reaches b (a NOTIFY; the poll is the fallback)
        refused = await cb.post("/v1/chat/completions", json=chat("oa/gpt-4o-mini"))
        assert refused.status_code >= 500, refused.text
        assert "breaker" in refused.text
        assert len(upstream.requests) == sent  # b did not try the open connection
        await asyncio.sleep(2.2)  # the cooldown is over: one probe, then closed everywhere
        probe = await cb.post("/v1/chat/completions", json=chat("oa/gpt-4o-mini"))
        assert probe.status_code == 200, probe.text
        assert len(upstream.requests) == sent + 1
        after = await ca.post("/v1/chat/completions", json=chat("oa/gpt-4o-mini"))
        assert after.status_code == 200, after.text


async def test_max_concurrent_holds_across_instances(team: Team, upstream: FakeUpstream) -> None:
    a, b = team.start(2)
    add_provider(a, upstream, "one", maxConcurrent=1)
    upstream.default_reply = Reply.text("slow", delay_first=0.2)
    await asyncio.sleep(1.0)

    async def lane(inst: Llmtap) -> list[int]:
        async with httpx.AsyncClient(base_url=inst.url, timeout=60) as client:
            return [
                (await client.post("/v1/chat/completions", json=chat("one/m"))).status_code
                for _ in range(3)
            ]

    results = await asyncio.gather(*(lane(inst) for inst in (a, b, a, b)))
    assert [s for r in results for s in r] == [200] * 12
    assert upstream.peak_in_flight == 1  # one call at a time across both instances


async def test_kill_9_one_instance_mid_traffic(
    team: Team, upstream: FakeUpstream, postgres_url: str
) -> None:
    """The other instance keeps serving, the dead one's leases expire, and the call log holds
    every call a client saw succeed (except the dead one's last moments), each once."""
    import psycopg

    from router.store.shared import LEASE_TTL_S
    from router.store.writer import DURABLE_WITHIN_S

    a, b = team.start(2)
    add_provider(a, upstream, "one", maxConcurrent=4)
    upstream.default_reply = Reply.text("ok", delay_first=0.05)
    await asyncio.sleep(1.0)
    seen: dict[str, dict[str, float]] = {"a": {}, "b": {}}
    stop = asyncio.Event()
    lanes_per_instance = 2

    async def lane(name: str, inst: Llmtap) -> None:
        async with httpx.AsyncClient(base_url=inst.url, timeout=30) as client:
            while not stop.is_set():
                try:
                    resp = await client.post("/v1/chat/completions", json=chat("one/m"))
                except httpx.HTTPError:
                    if name == "a":
                        return  # the instance is gone
                    raise
                assert resp.status_code == 200, resp.text
                seen[name][resp.headers["X-OmniRoute-Request-Id"]] = time.monotonic()

    traffic = asyncio.gather(
        *(lane(n, i) for n, i in (("a", a), ("b", b)) for _ in range(lanes_per_instance))
    )
    deadline = time.monotonic() + 60
    while len(seen["a"]) < 40 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    a.proc.kill()  # SIGKILL, mid-traffic: calls are in flight at a, holding leases
    killed_at = time.monotonic()
    await asyncio.to_thread(a.proc.wait, 30)
    b_before = len(seen["b"])
    await asyncio.sleep(LEASE_TTL_S + 1.5)  # b keeps serving while a's leases run out
    stop.set()
    await asyncio.wait_for(traffic, 60)
    assert len(seen["b"]) > b_before + 10, "b stopped serving after a died"

    with psycopg.connect(postgres_url) as conn:
        live = conn.execute(
            "SELECT COUNT(*) FROM connection_lease WHERE expires_at >= extract(epoch from now())"
        ).fetchone()[0]
    assert live == 0  # a's leases expired; b released its own

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        logs = api(b, "GET", "/api/usage/call-logs", params={"limit": 1000}).json()
        logged = [row["id"] for row in logs["logs"]]
        if set(seen["b"]) <= set(logged):
            break
        await asyncio.sleep(0.1)
    assert len(logged) == len(set(logged))  # no row twice
    assert logs["total"] == len(logged)  # everything fits on the page
    assert set(seen["b"]) <= set(logged)
    durable = {k for k, t in seen["a"].items() if t <= killed_at - DURABLE_WITHIN_S}
    assert durable <= set(logged)
    # Nothing beyond what the clients saw, save the calls in flight at a when it died.
    extra = set(logged) - set(seen["a"]) - set(seen["b"])
    assert len(extra) <= lanes_per_instance


async def test_cli_change_straight_to_the_database_reaches_the_gateway(
    team: Team, upstream: FakeUpstream, tmp_path: Path
) -> None:
    (gw,) = team.start(1)
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMTAP_")}
    done = await asyncio.to_thread(
        subprocess.run,
        llmtap_argv(
            "providers", "add", "openai", upstream.url + "/v1", "--name", "oa",
            "--key", "sk-test-gateway-0123456789", "--database-url", team.url,
            "--data-dir", str(tmp_path / "admin"),
        ),
        env={**env, "PYTHONPATH": str(Path(__file__).parents[2])},
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        deadline = time.monotonic() + 5
        status = 0
        while time.monotonic() < deadline and status != 200:
            resp = await client.post("/v1/chat/completions", json=chat("oa/gpt-4o-mini"))
            status = resp.status_code
            await asyncio.sleep(0.05)
    assert status == 200


async def test_429_cooldown_started_by_one_is_honoured_by_the_other(
    team: Team, upstream: FakeUpstream
) -> None:
    a, b = team.start(2)
    add_provider(a, upstream)
    await asyncio.sleep(1.0)
    upstream.script(Reply.error(429, "slow down", headers={"Retry-After": "2"}))
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=30) as ca,
        httpx.AsyncClient(base_url=b.url, timeout=30) as cb,
    ):
        limited = await ca.post("/v1/chat/completions", json=chat("oa/gpt-4o-mini"))
        assert limited.status_code == 429, limited.text
        sent = len(upstream.requests)
        await asyncio.sleep(0.5)
        skipped = await cb.post("/v1/chat/completions", json=chat("oa/gpt-4o-mini"))
        assert skipped.status_code == 429, skipped.text  # b did not send it: cooling down
        assert len(upstream.requests) == sent
        # Another model on the same connection is not limited (vendors limit per model).
        other = await cb.post("/v1/chat/completions", json=chat("oa/gpt-4o"))
        assert other.status_code == 200, other.text
        await asyncio.sleep(2.0)  # the cooldown is over, for both instances
        again = await cb.post("/v1/chat/completions", json=chat("oa/gpt-4o-mini"))
        assert again.status_code == 200, again.text
