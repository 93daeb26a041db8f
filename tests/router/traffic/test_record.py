"""The InterceptedRequest wire shape and the inspector API's list filters."""

from __future__ import annotations

import pytest

from router.errors import BadRequest
from router.traffic.record import (
    InterceptedRequest,
    LlmInfo,
    RecordFilter,
    filter_records,
    record_status_class,
    status_class,
)
from tests.router.traffic.factory import make_record

WIRE_FIELDS = {
    "id", "source", "agent", "timestamp", "method", "scheme", "host", "port", "path",
    "requestHeaders", "requestBody", "requestSize", "responseHeaders", "responseBody",
    "responseSize", "status", "proxyLatencyMs", "upstreamLatencyMs", "ttfbMs", "totalLatencyMs",
    "error", "sourceModel", "mappedModel", "detectedKind", "contextKey", "llm", "annotation",
    "sessionId", "note", "pid", "processName", "bodyTruncated",
    "upstreamRequest",  # issue 13: the request as sent upstream (router and diverted calls)
}  # fmt: skip
LLM_FIELDS = {
    "provider", "apiKind", "model", "streamed", "tokensIn", "tokensOut", "cacheReadTokens",
    "cacheWriteTokens", "reasoningTokens", "costUsd", "usageEstimated", "incomplete", "response",
    "conversation",
}  # fmt: skip


def test_wire_fields_are_exactly_the_spec() -> None:
    record = make_record(llm=LlmInfo())
    wire = record.to_wire()
    assert set(wire) == WIRE_FIELDS
    assert set(wire["llm"]) == LLM_FIELDS


def test_status_is_an_int_or_a_state() -> None:
    for status in (200, "in-flight", "error"):
        assert make_record(status=status).status == status
    with pytest.raises(ValueError):
        make_record(status="done")
    with pytest.raises(ValueError):
        make_record(source="somewhere")
    assert [status_class(s) for s in (204, 301, 404, 503, "error", "in-flight", 101)] == [
        "2xx", "3xx", "4xx", "5xx", "error", None, None,
    ]  # fmt: skip


def test_filter_from_query() -> None:
    flt = RecordFilter.from_query(
        {"profile": "llm", "host": "anthropic", "agent": "claude-code", "status": "2xx",
         "source": "agent-bridge", "sessionId": "s1", "contextKey": "abc"}
    )  # fmt: skip
    assert flt == RecordFilter(
        "llm", "anthropic", "claude-code", "2xx", "agent-bridge", "s1", "abc"
    )
    assert RecordFilter.from_query({}) == RecordFilter()
    assert RecordFilter.from_query({"profile": "", "status": ""}) == RecordFilter()
    with pytest.raises(BadRequest) as bad_profile:
        RecordFilter.from_query({"profile": "everything"})
    assert bad_profile.value.details[0].field == "profile"
    with pytest.raises(BadRequest) as bad_status:
        RecordFilter.from_query({"status": "200"})
    assert bad_status.value.details[0].field == "status"


def test_filter_records_keeps_order_and_matches_every_field() -> None:
    a = make_record(0, session_id="s1", context_key="abc")
    b = make_record(1, agent="codex", host="chatgpt.com", status=500)
    c = make_record(2, source="router", agent=None, status="in-flight")
    records: list[InterceptedRequest] = [a, b, c]
    assert list(filter_records(records)) == records
    assert list(filter_records(records, RecordFilter(agent="codex"))) == [b]
    assert list(filter_records(records, RecordFilter(status="5xx"))) == [b]
    assert list(filter_records(records, RecordFilter(source="router"))) == [c]
    assert list(filter_records(records, RecordFilter(session_id="s1", context_key="abc"))) == [a]
    assert list(filter_records(records, RecordFilter(host="CHATGPT"))) == [b]
    assert list(filter_records(records, RecordFilter(status="2xx"))) == [a]


def test_a_cut_stream_is_an_error_whatever_status_it_started_with() -> None:
    # The client got 200 and the stream then broke: the status filter's "error" finds it.
    cut = make_record(status=200, error="stream cut", llm=LlmInfo(incomplete=True))
    assert record_status_class(cut) == "error"
    assert RecordFilter(status="error").matches(cut)
    assert not RecordFilter(status="2xx").matches(cut)
    incomplete = make_record(status=200, llm=LlmInfo(incomplete=True))
    assert record_status_class(incomplete) == "error"
    # A failed call keeps its own class; a healthy one is still 2xx.
    assert record_status_class(make_record(status=404, error="no such model")) == "4xx"
    assert record_status_class(make_record(status=200, llm=LlmInfo())) == "2xx"
    assert record_status_class(make_record(status="in-flight")) is None
