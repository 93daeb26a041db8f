"""The responses codec: responses (parse, render, usage, stop reasons)."""

from __future__ import annotations

from openai.types.responses import Response

from router import ir
from router.formats.responses.codec import CODEC
from tests.router.formats.responses.samples import (
    full_body,
    response_body,
)


def test_parse_response_maps_output_and_usage() -> None:
    resp = CODEC.parse_response(response_body())
    assert (resp.id, resp.model, resp.created) == ("resp_1", "gpt-5", 1700000000)
    assert resp.content[0] == ir.ThinkingBlock("a\n\nb", signature="enc", origin="responses")
    assert resp.text() == "héllo"
    assert resp.tool_calls()[0].id == "call_1"  # call_id, not the item id
    assert resp.stop_reason == "tool_use"
    assert resp.usage == ir.Usage(
        input_tokens=50, output_tokens=30, cache_read_tokens=20, reasoning_tokens=10
    )


def test_render_response_is_a_valid_sdk_response_and_round_trips() -> None:
    resp = CODEC.parse_response(response_body())
    req = CODEC.parse_request(full_body())
    rendered = CODEC.render_response(resp, req)
    parsed = Response.model_validate(rendered)
    assert parsed.status == "completed" and parsed.output_text == "héllo"
    assert parsed.usage is not None and parsed.usage.input_tokens_details.cached_tokens == 20
    assert CODEC.parse_response(rendered) == resp


def test_case6_truncation_is_status_incomplete() -> None:
    resp = ir.Response(id="x", model="m", content=[ir.TextBlock("cut")], stop_reason="max_tokens")
    rendered = CODEC.render_response(resp, ir.Request(model="m"))
    parsed = Response.model_validate(rendered)
    assert parsed.status == "incomplete"
    assert parsed.incomplete_details is not None
    assert parsed.incomplete_details.reason == "max_output_tokens"
    assert CODEC.parse_response(rendered).stop_reason == "max_tokens"
    assert CODEC.parse_response(response_body("incomplete")).stop_reason == "max_tokens"
