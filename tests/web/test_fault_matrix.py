"""The fault matrix: every way an upstream (or a client) can fail, for chat and messages,
streamed and not, on one connection and on a two-connection combo.

Each case checks what the client got (status, and a body in its own format), whether the combo
failed over, that the upstream call was cancelled when the router or the client gave up, and
the call-log row. Timeouts are configured small (``TIMEOUT_S``); every call must complete, and
pytest's timeout is the only clock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from tests.fakes.upstream import DEFAULT_TEXT, Reply
from tests.web.duo import (
    AN_PING,
    AN_START,
    CONTENT_FRAMES,
    DUO_LOOP,
    TIMEOUT_S,
    Duo,
    an_event,
    stream_error,
    stream_text,
)

pytestmark = [DUO_LOOP, pytest.mark.timeout(60)]

LANES = [("chat", "oa"), ("messages", "an")]  # each client on its own format's upstream
ROUTES = ["single", "combo"]

# --------------------------------------------------------------------------- broken 200 replies


BROKEN_200 = {
    "empty": Reply.raw(b"", headers={"Content-Type": "application/json"}),
    "not-json": Reply.raw(
        "<html>upstream proxy error</html>", headers={"Content-Type": "application/json"}
    ),
    "not-the-format": Reply.raw({"status": "ok"}),
    "error-in-200": Reply.raw({"error": {"message": "Provider returned error", "code": 502}}),
}


@pytest.mark.parametrize("fault", list(BROKEN_200))
@pytest.mark.parametrize(
    ("client", "kind"), [("chat", "oa"), ("messages", "an"), ("messages", "oa")]
)
async def test_combo_fails_over_on_a_broken_200_reply(
    duo: Duo, client: str, kind: str, fault: str
) -> None:
    duo.a.script(BROKEN_200[fault])
    resp, raw = await duo.call(client, duo.combo(kind), stream=False)
    assert resp.status_code == 200, raw
    assert resp.headers["x-omniroute-provider"] == f"{kind}-b"
    assert DEFAULT_TEXT in raw
    row = await duo.last_log()
    first, second = row["attempts"]
    assert first["provider"] == f"{kind}-a" and first["error"]
    assert second["status"] == 200


# --------------------------------------------------------------------------- the matrix


@dataclass(frozen=True)
class Fault:
    """One upstream failure. ``before``: it happens before any content reached the client (a
    combo fails over, one connection answers ``status``); otherwise mid-stream (the client got
    content: 200, then an in-band error; no failover)."""

    replies: dict[str, Reply] = field(default_factory=dict)  # per upstream kind
    before: bool = True
    status: int = 502  # what a single connection's client gets (before)
    stream_only: bool = False
    refused: bool = False  # the connection's port has no listener
    cancels: bool = False  # the router gives up on a live upstream call, which must see it


def both(reply: Reply) -> dict[str, Reply]:
    return {"oa": reply, "an": reply}


TEXT = "alpha beta gamma delta"
# Frames of Reply.text(TEXT) up to and including the first text delta ("alpha"): OpenAI sends
# a role chunk first; Anthropic message_start, content_block_start and a ping.
FIRST_DELTA = {"oa": 2, "an": 4}

FAULTS: dict[str, Fault] = {
    "500": Fault(both(Reply.error(500, "boom"))),
    "html-502": Fault(
        both(Reply.error(502, "bad gateway", body="<html><h1>502 Bad Gateway</h1></html>"))
    ),
    "429-retry-after": Fault(
        both(Reply.error(429, "slow down", headers={"retry-after": "7"})), status=429
    ),
    "refused": Fault(refused=True),
    "no-headers": Fault(both(Reply.text("late", delay_first=3600)), status=504, cancels=True),
    # Keep-alives and nothing else: each resets the idle timeout, so only a bound on time to
    # first content (the first-byte timeout) ends the wait.
    "pings-only": Fault(
        {
            "oa": Reply.sse(*[": keep-alive\n\n"] * 3000, chunk_delay=TIMEOUT_S / 5),
            "an": Reply.sse(AN_START, *[AN_PING] * 3000, chunk_delay=TIMEOUT_S / 5),
        },
        status=504,
        stream_only=True,
        cancels=True,
    ),
    "empty-200": Fault(both(BROKEN_200["empty"])),
    "non-json-200": Fault(
        both(Reply.raw("<html>oops</html>", headers={"Content-Type": "text/html"}))
    ),
    "malformed-sse": Fault(
        {
            "oa": Reply.sse("data: {not json\n\n"),
            "an": Reply.sse("event: message_start\ndata: {not json\n\n"),
        },
        stream_only=True,
    ),
    "garbage-sse": Fault(
        both(Reply.sse("<html><body>upstream error</body></html>")), stream_only=True
    ),
    "stall-mid-stream": Fault(
        {k: Reply.text(TEXT, stall_after=n) for k, n in FIRST_DELTA.items()},
        before=False,
        stream_only=True,
        cancels=True,
    ),
    "cut-mid-stream": Fault(
        {k: Reply.text(TEXT, cut_after=n) for k, n in FIRST_DELTA.items()},
        before=False,
        stream_only=True,
    ),
    "malformed-mid-stream": Fault(
        {
            "oa": Reply.sse(*CONTENT_FRAMES["oa"], "data: {not json\n\n"),
            "an": Reply.sse(*CONTENT_FRAMES["an"], an_event("content_block_delta", "{not json")),
        },
        before=False,
        stream_only=True,
    ),
    "garbage-mid-stream": Fault(
        {k: Reply.sse(*CONTENT_FRAMES[k], "<html>oops</html>\n\n") for k in ("oa", "an")},
        before=False,
        stream_only=True,
    ),
}
CASES = [
    pytest.param(name, stream, id=f"{name}-{'stream' if stream else 'json'}")
    for name, fault in FAULTS.items()
    for stream in ((True,) if fault.stream_only else (False, True))
]


@pytest.mark.parametrize(("name", "stream"), CASES)
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("client", "kind"), LANES)
async def test_fault(duo: Duo, client: str, kind: str, route: str, name: str, stream: bool) -> None:
    fault = FAULTS[name]
    failing = f"{kind}-dead" if fault.refused else f"{kind}-a"
    if fault.refused:
        model = duo.dead_combo(kind) if route == "combo" else f"{failing}/m-a"
    else:
        duo.a.script(fault.replies[kind])
        model = duo.combo(kind) if route == "combo" else duo.single(kind)

    resp, raw = await duo.call(client, model, stream=stream)
    row = await duo.last_log()
    attempts = row["attempts"]
    assert attempts[0]["provider"] == failing and attempts[0]["error"], attempts

    if fault.before and route == "combo":  # failed over to b, which answered
        assert resp.status_code == 200, raw
        assert resp.headers["x-omniroute-provider"] == f"{kind}-b"
        text = stream_text(client, raw) if stream else raw
        assert DEFAULT_TEXT in text and stream_error(client, raw) is None
        assert [a["provider"] for a in attempts] == [failing, f"{kind}-b"]
        assert attempts[1]["status"] == 200
        assert (row["status"], row["error"]) == (200, None)
    elif fault.before:  # one connection: the error, in the envelope, before any byte
        assert resp.status_code == fault.status, raw
        assert resp.headers["content-type"].startswith("application/json")
        error = resp.json()["error"]
        assert error["message"] and error["type"]
        assert len(attempts) == 1
        assert row["status"] == fault.status and row["error"]
    else:  # content reached the client: 200, what arrived, then an in-band error; no failover
        assert resp.status_code == 200
        assert resp.headers["x-omniroute-provider"] == failing
        assert stream_text(client, raw) in ("alpha", "partial answer")
        assert stream_error(client, raw) is not None, raw
        assert duo.hits(duo.b) == 0
        assert len(attempts) == 1 and attempts[0]["status"] in (502, 504)
        assert row["status"] == 200 and row["error"]
    if fault.cancels:  # the router gave up on a live call: the upstream saw it go
        async with asyncio.timeout(10):
            await duo.a.disconnected.wait()


# --------------------------------------------------------------------------- clients that leave


async def _leave_when(duo: Duo, client: str, model: str, *, stream: bool, after: str) -> None:
    """Send a call and hang up: once the upstream has the request (``after="sent"``) or once
    the first content arrived (``after="content"``)."""
    task = asyncio.create_task(duo.leave_once(client, model, "alpha", stream=stream))
    if after == "sent":
        for _ in range(400):  # bounded: the request reaches the upstream within moments
            if duo.a.requests:
                break
            await asyncio.sleep(0.01)
        assert duo.a.requests and not task.done()
        task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


LEAVES = [
    pytest.param("sent", False, id="before-headers-json"),
    pytest.param("sent", True, id="before-headers-stream"),
    pytest.param("content", True, id="mid-stream"),
]


@pytest.mark.parametrize(("after", "stream"), LEAVES)
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("client", "kind"), LANES)
async def test_client_disconnect(
    duo: Duo, client: str, kind: str, route: str, after: str, stream: bool
) -> None:
    duo.server.runtime.router.timeouts.first_byte = 60  # the client leaves long before these
    duo.server.runtime.router.timeouts.idle = 60
    if after == "sent":
        duo.a.script(Reply.text(TEXT, delay_first=3600))
    else:
        duo.a.script(Reply.text(TEXT, stall_after=FIRST_DELTA[kind]))
    model = duo.combo(kind) if route == "combo" else duo.single(kind)
    await _leave_when(duo, client, model, stream=stream, after=after)
    async with asyncio.timeout(10):
        await duo.a.disconnected.wait()  # the upstream call was cancelled
    row = await duo.last_log()
    assert (row["status"], row["error"]) == (499, "client disconnected")
    (attempt,) = row["attempts"]  # no failover for a client that left
    assert attempt["provider"] == f"{kind}-a"
    assert (attempt["status"], attempt["error"]) == (499, "client disconnected")
    assert duo.hits(duo.b) == 0
