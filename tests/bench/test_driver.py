"""The open- and closed-loop drivers against the bench upstream and floor, in-process on loopback."""

import json

import pytest

from bench.driver import Target, closed_loop, open_loop
from bench.floor import make_app
from bench.upstream import Pacing, Upstream

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def upstream(aiohttp_server):
    up = Upstream(Pacing(latency_ms=0, t0_ms=0, chunks=6, interval_ms=1))
    server = await aiohttp_server(up.app())
    return up, f"http://127.0.0.1:{server.port}"


async def test_open_loop_sends_exactly_rate_times_duration(upstream):
    up, base = upstream
    target = Target(base + "/v1/chat/completions", json.dumps(BODY).encode())
    res = await open_loop(target, rate=40, duration_s=1.0, timeout_s=5)
    assert len(res.rows) == 40
    assert res.errors == 0
    assert up.requests == 40
    # Scheduled sends are evenly spaced, independent of responses (open loop).
    assert [r.sched_s for r in res.rows[:3]] == [0.0, 0.025, 0.05]
    assert all(r.total_ms >= r.ttfb_ms > 0 for r in res.rows)
    assert res.summary()["requests"] == 40


async def test_open_loop_marks_errors_not_success(upstream):
    _, base = upstream
    target = Target(base + "/nope", json.dumps(BODY).encode())
    res = await open_loop(target, rate=20, duration_s=0.5, timeout_s=5)
    assert res.errors == len(res.rows) == 10
    assert res.rows[0].error == "HTTP 404"


@pytest.mark.parametrize(("path", "frames"), [("/v1/chat/completions", 9), ("/v1/messages", 11)])
async def test_streams_through_the_floor_arrive_frame_by_frame(
    upstream, aiohttp_server, path, frames
):
    _, base = upstream
    floor = await aiohttp_server(make_app(base))
    body = json.dumps({**BODY, "stream": True}).encode()
    target = Target(f"http://127.0.0.1:{floor.port}{path}", body, stream=True)
    res = await closed_loop(target, 3, timeout_s=5)
    assert res.errors == 0
    for row in res.rows:
        assert row.content_frames == 6
        assert len(row.gaps_ms) == 5
        assert row.first_content_ms >= row.ttfb_ms
    # OpenAI: + finish chunk, usage chunk, [DONE]. Anthropic: + message_start,
    # content_block_start, content_block_stop, message_delta, message_stop.
    assert {r.frames for r in res.rows} == {frames}


async def test_pacing_config_changes_later_requests(upstream, aiohttp_client):
    up, _ = upstream
    client = await aiohttp_client(up.app())
    resp = await client.post("/_bench/config", json={"latency_ms": 3, "chunks": 2})
    assert (await resp.json())["chunks"] == 2
    assert up.pacing.latency_ms == 3.0
