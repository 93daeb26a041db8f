"""Streams that go wrong, end to end: in-band upstream errors before the first content byte fail
over like a 5xx, after it they reach the client as a well-formed error in its own format, a
broken stream is never recorded as a success, and the SSE trailer only goes where the official
SDK ignores it."""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors

from tests.fakes.upstream import DEFAULT_TEXT, Reply
from tests.web.duo import (
    AN_PING,
    AN_START,
    CLIENTS,
    CONTENT_FRAMES,
    DUO_LOOP,
    Duo,
    an_event,
    oa_chunk,
    stream_error,
    stream_text,
)

pytestmark = DUO_LOOP

AN_OVERLOADED = an_event(
    "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
)
# OpenRouter: a 200 stream whose chunk carries ``error`` (and finish_reason "error").
OA_ERROR = oa_chunk(
    {"content": ""}, "error", error={"code": 502, "message": "Provider returned error"}
)
GE_ERROR = "data: " + json.dumps(
    {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
) + "\n\n"  # fmt: skip

UPSTREAM_MESSAGE = {"oa": "Provider returned error", "an": "Overloaded", "ge": "overloaded"}

ERROR_FIRST = {
    "oa": [": OPENROUTER PROCESSING\n\n", OA_ERROR, "data: [DONE]\n\n"],
    "an": [AN_START, AN_PING, AN_OVERLOADED],
    "ge": [GE_ERROR],
}
ERROR_AFTER_CONTENT = {
    "oa": [*CONTENT_FRAMES["oa"], OA_ERROR, "data: [DONE]\n\n"],
    "an": [*CONTENT_FRAMES["an"], AN_OVERLOADED],
    "ge": [*CONTENT_FRAMES["ge"], GE_ERROR],
}
KINDS = ["oa", "an", "ge"]


# --------------------------------------------------------------------------- failover


async def combo_stream(
    duo: Duo, client: str, kind: str, frames: list[str]
) -> tuple[httpx.Response, str]:
    """A streamed call to the kind's combo, whose first upstream answers with ``frames``."""
    duo.a.script(Reply.sse(*frames))
    return await duo.call(client, duo.combo(kind), stream=True)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("client", CLIENTS)
async def test_error_event_before_first_content_fails_over(
    duo: Duo, client: str, kind: str
) -> None:
    resp, raw = await combo_stream(duo, client, kind, ERROR_FIRST[kind])
    assert resp.status_code == 200, raw
    assert resp.headers["x-omniroute-provider"] == f"{kind}-b"
    assert stream_text(client, raw) == DEFAULT_TEXT
    assert stream_error(client, raw) is None
    assert UPSTREAM_MESSAGE[kind] not in raw
    row = await duo.last_log()
    assert row["status"] == 200 and row["error"] is None
    first, second = row["attempts"]
    assert first["provider"] == f"{kind}-a" and UPSTREAM_MESSAGE[kind] in first["error"]
    assert second["provider"] == f"{kind}-b" and second["status"] == 200


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("client", CLIENTS)
async def test_error_event_after_content_is_a_well_formed_in_band_error(
    duo: Duo, client: str, kind: str
) -> None:
    resp, raw = await combo_stream(duo, client, kind, ERROR_AFTER_CONTENT[kind])
    assert resp.status_code == 200
    assert resp.headers["x-omniroute-provider"] == f"{kind}-a"
    assert stream_text(client, raw) == "partial answer", "the error is not content"
    error = stream_error(client, raw)
    assert error is not None, raw
    assert UPSTREAM_MESSAGE[kind] in error["message"]
    assert duo.hits(duo.b) == 0, "no failover once content reached the client"
    row = await duo.last_log()
    assert row["status"] == 200  # what the client got; the error went in-band
    assert UPSTREAM_MESSAGE[kind] in row["error"]
    (attempt,) = row["attempts"]
    assert attempt["status"] == 502 and UPSTREAM_MESSAGE[kind] in attempt["error"]


@pytest.mark.parametrize(
    ("client", "kind", "frames"),
    [
        ("chat", "oa", []),
        ("messages", "an", []),
        ("messages", "an", [AN_START, AN_PING]),
        ("chat", "an", [AN_START]),
        ("messages", "oa", [oa_chunk({"role": "assistant", "content": ""})]),
        ("gemini", "oa", []),
    ],
    ids=["empty-same", "empty-anthropic", "start-only-same", "start-only", "role-only", "gemini"],
)
async def test_stream_ending_before_content_is_retried_not_a_protocol_dead_end(
    duo: Duo, client: str, kind: str, frames: list[str]
) -> None:
    resp, raw = await combo_stream(duo, client, kind, frames)
    assert resp.status_code == 200, raw
    assert resp.headers["x-omniroute-provider"] == f"{kind}-b"
    assert stream_text(client, raw) == DEFAULT_TEXT
    row = await duo.last_log()
    assert [a["provider"] for a in row["attempts"]] == [f"{kind}-a", f"{kind}-b"]


@pytest.mark.parametrize("kind", KINDS)
async def test_client_disconnect_mid_stream_is_499_in_call_and_attempt_log(
    duo: Duo, kind: str
) -> None:
    duo.server.runtime.router.timeouts.idle = 30  # the client leaves long before this
    # Stall right after the first text delta (Anthropic: start, block start, ping, delta).
    stall_after = {"oa": 2, "an": 4, "ge": 1}[kind]
    duo.a.script(Reply.text("partial answer and more", stall_after=stall_after))
    await duo.leave_once("chat", duo.combo(kind), "partial")
    await duo.a.disconnected.wait()  # the upstream call was cancelled
    row = await duo.last_log()
    assert row["status"] == 499 and row["error"] == "client disconnected"
    (attempt,) = row["attempts"]
    assert attempt["status"] == 499 and attempt["error"] == "client disconnected"


# --------------------------------------------------------------------------- broken streams


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("client", ["chat", "messages"])
async def test_stream_cut_midway_is_recorded_as_error_not_end_turn(
    duo: Duo, client: str, kind: str
) -> None:
    # Cut after two text deltas (Anthropic: start, block start, ping, then deltas).
    cut_after = {"oa": 3, "an": 5, "ge": 2}[kind]
    duo.a.script(Reply.text("one two three four five six", cut_after=cut_after))
    resp, raw = await duo.call(client, duo.single(kind), stream=True)
    assert resp.status_code == 200
    assert stream_text(client, raw) == "one two"
    assert stream_error(client, raw) is not None, raw
    row = await duo.last_log()
    assert row["status"] == 200 and row["error"], row
    record = await duo.record(resp.headers["x-omniroute-request-id"])
    assert record["error"]
    llm = record["llm"]
    assert llm["incomplete"] is True
    merged = llm["response"]
    if client == "chat":
        assert merged["choices"][0]["finish_reason"] is None
    else:
        assert merged["stop_reason"] is None


# --------------------------------------------------------------------------- SSE trailer


@pytest.mark.parametrize("kind", KINDS)
async def test_google_genai_stream_parses_every_frame(duo: Duo, kind: str) -> None:
    """google-genai stopped at ``: x-omniroute-response-cost=...`` (UnknownApiResponseError)."""
    duo.a.script(Reply.text("gemini streams fine", usage=(7, 3, 0, 0, 0)))
    client = genai.Client(
        api_key="unused", http_options={"base_url": duo.server.url, "api_version": "v1beta"}
    )
    text = ""
    usage = None
    stream = await client.aio.models.generate_content_stream(model=duo.single(kind), contents="hi")
    async for chunk in stream:
        text += chunk.text or ""
        usage = chunk.usage_metadata or usage
    assert text == "gemini streams fine"
    assert usage is not None and usage.prompt_token_count == 7


@pytest.mark.parametrize("kind", KINDS)
async def test_gemini_stream_has_no_sse_comment_lines(duo: Duo, kind: str) -> None:
    _resp, raw = await duo.call("gemini", duo.single(kind), stream=True)
    assert stream_text("gemini", raw) == DEFAULT_TEXT
    assert not [line for line in raw.splitlines() if line.startswith(":")]


async def test_google_genai_sees_an_in_band_error_as_an_error(duo: Duo) -> None:
    duo.a.script(Reply.sse(*ERROR_AFTER_CONTENT["an"]))
    client = genai.Client(
        api_key="unused", http_options={"base_url": duo.server.url, "api_version": "v1beta"}
    )
    stream = await client.aio.models.generate_content_stream(model=duo.single("an"), contents="hi")
    text = ""
    with pytest.raises(genai_errors.APIError, match="Overloaded"):
        async for chunk in stream:
            text += chunk.text or ""
    assert text == "partial answer"


@pytest.mark.parametrize("kind", KINDS)
async def test_openai_sdk_ignores_the_trailer_on_chat_streams(duo: Duo, kind: str) -> None:
    raw = await _raw(duo, "chat", kind)
    assert ": x-omniroute-tokens-in=" in raw  # (no cost line: model "m-a" has no price)
    client = openai.AsyncOpenAI(base_url=duo.server.url + "/v1", api_key="unused")
    stream = await client.chat.completions.create(
        model=duo.single(kind), messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == DEFAULT_TEXT


@pytest.mark.parametrize("kind", KINDS)
async def test_openai_sdk_ignores_the_trailer_on_responses_streams(duo: Duo, kind: str) -> None:
    raw = await _raw(duo, "responses", kind)
    assert ": x-omniroute-tokens-in=" in raw  # (no cost line: model "m-a" has no price)
    client = openai.AsyncOpenAI(base_url=duo.server.url + "/v1", api_key="unused")
    stream = await client.responses.create(model=duo.single(kind), input="hi", stream=True)
    text, done = "", False
    async for event in stream:
        if event.type == "response.output_text.delta":
            text += event.delta
        done = done or event.type == "response.completed"
    assert text == DEFAULT_TEXT and done


@pytest.mark.parametrize("kind", KINDS)
async def test_anthropic_sdk_ignores_the_trailer(duo: Duo, kind: str) -> None:
    raw = await _raw(duo, "messages", kind)
    assert ": x-omniroute-tokens-in=" in raw  # (no cost line: model "m-a" has no price)
    client = anthropic.AsyncAnthropic(
        base_url=duo.server.url,
        api_key="unused",
        http_client=anthropic.DefaultAsyncHttpxClient(),
    )
    async with client.messages.stream(
        model=duo.single(kind), max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as s:
        message = await s.get_final_message()
    assert message.content[0].type == "text" and message.content[0].text == DEFAULT_TEXT


async def _raw(duo: Duo, client: str, kind: str) -> str:
    resp, raw = await duo.call(client, duo.single(kind), stream=True)
    assert resp.status_code == 200, raw
    return raw
