"""The stream pipe on its own, over a real upstream call: a Responses-format upstream stream
(no provider kind speaks it yet, so the end-to-end tests cannot reach it) fails over on
``response.failed`` before content and ends in-band after it; garbage never passes through."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from router import ir
from router.engine.stream import StreamOutcome, StreamPipe
from router.errors import UpstreamError
from router.formats import get_codec
from router.providers import make_client, open_call
from router.store.records import ProviderConnection
from tests.fakes.upstream import FakeUpstream, Reply


def _ev(obj: dict[str, Any]) -> str:
    return f"event: {obj['type']}\ndata: {json.dumps(obj)}\n\n"


RESPONSE = {"id": "resp_1", "object": "response", "created_at": 1, "model": "m", "output": []}
CREATED = _ev({"type": "response.created", "response": {**RESPONSE, "status": "in_progress"}})
ITEM = _ev(
    {
        "type": "response.output_item.added",
        "output_index": 0,
        "item": {"id": "msg_1", "type": "message", "role": "assistant", "content": []},
    }
)
DELTA = _ev(
    {
        "type": "response.output_text.delta",
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "delta": "partial answer",
    }
)
FAILED = _ev(
    {
        "type": "response.failed",
        "response": {
            **RESPONSE,
            "status": "failed",
            "error": {"code": "server_error", "message": "The server had an error"},
        },
    }
)


class Hooks:
    def __init__(self) -> None:
        self.outcome: StreamOutcome | None = None
        self.first_tokens = 0

    def first_token(self) -> None:
        self.first_tokens += 1

    def trailer(self, response: ir.Response) -> bytes:
        return b""

    def finished(self, outcome: StreamOutcome) -> None:
        self.outcome = outcome


@pytest.fixture
async def pipe_for(fake_upstream: FakeUpstream) -> AsyncIterator[Any]:
    conn = ProviderConnection(
        id="c1", provider="openai", name="up", url=f"{fake_upstream.url}/v1", api_key="k" * 20
    )
    async with make_client() as client:

        async def make(client_format: str, *frames: str) -> tuple[StreamPipe, Hooks]:
            fake_upstream.script(Reply.sse(*frames))
            body = {"model": "m", "input": "hi", "stream": True}
            call = await open_call(client, conn, "m", body, stream=True)
            codec_in = get_codec(client_format)
            req = codec_in.parse_request(_request(client_format))
            hooks = Hooks()
            return StreamPipe(call, req, codec_in, get_codec("responses"), hooks), hooks

        yield make


def _request(client_format: str) -> dict[str, Any]:
    if client_format == "anthropic":
        return {"model": "m", "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    return {"model": "m", "input": "hi", "stream": True}


@pytest.mark.parametrize("client_format", ["responses", "anthropic"])
async def test_response_failed_before_content_raises_for_failover(
    pipe_for: Any, client_format: str
) -> None:
    pipe, hooks = await pipe_for(client_format, CREATED, ITEM, FAILED)
    with pytest.raises(UpstreamError) as info:
        await pipe.prefetch()
    assert info.value.retryable and "server had an error" in info.value.message
    assert hooks.outcome is None  # never started for the client: the router fails over


@pytest.mark.parametrize("client_format", ["responses", "anthropic"])
async def test_response_failed_after_content_ends_the_stream_in_band(
    pipe_for: Any, client_format: str
) -> None:
    pipe, hooks = await pipe_for(client_format, CREATED, ITEM, DELTA, FAILED)
    first = await pipe.prefetch()
    raw = first + b"".join([chunk async for chunk in pipe.run(first)][1:])
    text = raw.decode()
    assert "partial answer" in text
    last = [b for b in text.split("\n\n") if b.strip()][-1]
    if client_format == "responses":
        assert last.startswith("event: response.failed")
    else:
        assert last.startswith("event: error")
    assert "server had an error" in last
    outcome = hooks.outcome
    assert outcome is not None and outcome.error is not None and outcome.completed
    assert outcome.response.incomplete and outcome.response.stop_reason is None
    assert hooks.first_tokens == 1


async def test_garbage_frame_is_never_forwarded(pipe_for: Any) -> None:
    pipe, hooks = await pipe_for(
        "responses", CREATED, ITEM, DELTA, "<html>502 Bad Gateway</html>\n\n"
    )
    first = await pipe.prefetch()
    raw = first + b"".join([chunk async for chunk in pipe.run(first)][1:])
    assert b"<html>" not in raw
    assert raw.decode().rstrip().split("\n\n")[-1].startswith("event: response.failed")
    assert hooks.outcome is not None and hooks.outcome.error is not None
