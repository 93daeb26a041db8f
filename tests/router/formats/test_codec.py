"""What every codec answers besides parsing and rendering (router/formats/codec.py): whether a
200 body is a reply of its format, how a reply of a cut stream says it is unfinished, the body
a same-format upstream gets, and whether its streams may carry SSE comments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from router import ir
from router.formats import FORMATS, get_codec
from tests.router.formats.openai_chat import samples as openai_chat_samples
from tests.router.formats.responses import samples as responses_samples


def _reply(fmt: str) -> dict[str, Any]:
    resp = ir.Response(
        id="r1", model="m", content=[ir.TextBlock("hi")], stop_reason="end_turn", usage=ir.Usage()
    )
    return get_codec(fmt).render_response(resp, ir.Request(model="m", source_format=fmt))


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_rendered_reply_is_a_reply_and_a_stray_object_is_not(fmt: str) -> None:
    codec = get_codec(fmt)
    assert codec.is_reply(_reply(fmt))
    assert not codec.is_reply({})
    assert not codec.is_reply({"html": "<h1>502 Bad Gateway</h1>"})


def _finish(fmt: str, body: dict[str, Any]) -> Any:
    match fmt:
        case "openai-chat":
            return body["choices"][0]["finish_reason"]
        case "anthropic":
            return body["stop_reason"]
        case "responses":
            return body["status"]
        case "gemini":
            return body["candidates"][0].get("finishReason")
        case _:
            return body["response"]["candidates"][0].get("finishReason")


UNFINISHED = {
    "openai-chat": ("stop", None),
    "anthropic": ("end_turn", None),
    "responses": ("completed", "incomplete"),
    "gemini": ("STOP", None),
    "cloudcode": ("STOP", None),
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_mark_unfinished_takes_the_finish_reason_out(fmt: str) -> None:
    body = _reply(fmt)
    before, after = UNFINISHED[fmt]
    assert _finish(fmt, body) == before
    get_codec(fmt).mark_unfinished(body)
    assert _finish(fmt, body) == after


def test_passthrough_body_replaces_only_the_model() -> None:
    body = {"model": "alias", "messages": [], "stream_options": {"x": 1}}
    chat = get_codec("openai-chat")
    assert chat.passthrough_body(body, "real", stream=False) == {**body, "model": "real"}
    # the router needs the usage chunk to account a streamed call
    streamed = chat.passthrough_body(body, "real", stream=True)
    assert streamed["stream_options"] == {"x": 1, "include_usage": True}
    assert body["model"] == "alias" and body["stream_options"] == {"x": 1}  # not mutated
    assert get_codec("anthropic").passthrough_body(body, "real", stream=True)["model"] == "real"
    assert get_codec("responses").passthrough_body(body, "real", stream=True)["model"] == "real"
    assert "model" not in get_codec("gemini").passthrough_body({"model": "x"}, "y", stream=True)
    cloud = get_codec("cloudcode").passthrough_body({"model": "x", "request": {}}, "y", stream=True)
    assert cloud == {"model": "y", "request": {}}


def test_only_gemini_streams_refuse_sse_comments() -> None:
    assert [f for f in FORMATS if not get_codec(f).sse_comments] == ["gemini", "cloudcode"]


@pytest.mark.parametrize(
    ("fmt", "full_body"),
    [
        ("openai-chat", openai_chat_samples.full_body),
        ("responses", responses_samples.full_body),
    ],
)
def test_ir_round_trip_parse_render_parse(fmt: str, full_body: Callable[[], Any]) -> None:
    """A body using every field the format has: parsed, rendered and parsed again, the IR is
    the same."""
    codec = get_codec(fmt)
    first = codec.parse_request(full_body())
    second = codec.parse_request(codec.render_request(first))
    first.dropped = second.dropped = []
    assert second == first
