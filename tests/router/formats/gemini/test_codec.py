"""The gemini codec facade end to end."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from router import ir
from router.errors import BadRequest
from router.formats.gemini.codec import CLOUDCODE_CODEC, CODEC
from tests.router.formats.gemini.samples import (
    full_request,
    full_response,
    parse_in_pieces,
    render_all,
    sse,
    stream_chunks,
)
from tests.router.formats.shared import accumulate


def cloudcode_request() -> dict[str, Any]:
    inner = full_request()
    inner["sessionId"] = "sess-1"
    return {
        "model": "gemini-2.5-pro",
        "project": "proj-123",
        "userAgent": "antigravity",
        "requestType": "agent",
        "requestId": "agent-abc",
        "request": inner,
    }


def test_cloudcode_request_envelope_round_trip() -> None:
    body = cloudcode_request()
    req = CLOUDCODE_CODEC.parse_request(copy.deepcopy(body))
    assert req.model == "gemini-2.5-pro" and req.source_format == "cloudcode"
    assert req.extra["envelope"] == {
        "project": "proj-123",
        "userAgent": "antigravity",
        "requestType": "agent",
        "requestId": "agent-abc",
    }
    assert req.extra["sessionId"] == "sess-1"
    assert CLOUDCODE_CODEC.render_request(req) == body
    # the same IR rendered as plain Gemini loses only the envelope
    plain = CODEC.render_request(req)
    assert plain == body["request"]
    assert req.dropped == ["envelope"]


def test_cloudcode_bad_request_paths_point_inside_the_envelope() -> None:
    with pytest.raises(BadRequest) as err:
        CLOUDCODE_CODEC.parse_request({"model": "m", "request": {"contents": {}}})
    assert err.value.details[0].field == "request.contents"
    with pytest.raises(BadRequest) as err:
        CLOUDCODE_CODEC.parse_request({"model": "m", "contents": []})
    assert err.value.details[0].field == "request"


def test_cloudcode_response_envelope_round_trip() -> None:
    body = {"response": full_response(), "traceId": "t-1"}
    resp = CLOUDCODE_CODEC.parse_response(copy.deepcopy(body))
    assert resp.id == "resp-1" and resp.extra["envelope"] == {"traceId": "t-1"}
    assert CLOUDCODE_CODEC.render_response(resp, ir.Request(model="x")) == body
    assert CLOUDCODE_CODEC.parse_response(full_response()) == CODEC.parse_response(full_response())


def test_cloudcode_stream_wraps_and_unwraps_gemini_chunks() -> None:
    wrapped = sse([{"response": c, "traceId": "t"} for c in stream_chunks()])
    events = parse_in_pieces(wrapped, [11], codec=CLOUDCODE_CODEC)
    assert events == parse_in_pieces(sse(stream_chunks()), [], codec=CODEC)
    data = render_all(CLOUDCODE_CODEC, events, ir.Request(model="m"))
    chunks = [json.loads(line[6:]) for line in data.split(b"\n\n") if line]
    assert all(set(c) == {"response"} for c in chunks)
    assert accumulate(parse_in_pieces(data, [2], codec=CLOUDCODE_CODEC)) == accumulate(events)
