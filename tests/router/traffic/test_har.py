"""HAR 1.2 export: schema-valid for every record kind and readable by mitmproxy's HAR reader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from mitmproxy.io import har as mitmproxy_har

from router.traffic.buffer import LiveBuffer
from router.traffic.har import build_har, iter_har
from router.traffic.record import InterceptedRequest, LlmInfo
from tests.router.traffic.factory import make_record

SCHEMA = json.loads((Path(__file__).parent / "har-1.2.schema.json").read_text())
SECRET = "sk-ant-api03-" + "H4rS3cr3t" * 5
SSE_BODY = (
    'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1"}}\n\n'
    'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}\n\n'
    'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def every_kind() -> dict[str, InterceptedRequest]:
    big = LiveBuffer(max_body_kb=1).add(
        make_record(5, response_body="x " * 4000, response_size=8000)
    )
    return {
        "json": make_record(
            0,
            path="/v1/messages?beta=true&key=" + SECRET,
            request_headers={
                "content-type": "application/json",
                "x-api-key": SECRET,
                "cookie": "a=b",
            },
            request_body=json.dumps(
                {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}
            ),
            annotation="interesting call",
            session_id="2f0e7a6c-1111-4222-8333-944445555666",
            context_key="0123456789ab",
            llm=LlmInfo(
                provider="anthropic",
                format="anthropic",
                model="claude-sonnet-4-5",
                tokens_in=10,
                tokens_out=2,
                cost_usd=0.0001,
            ),
        ),
        "sse": make_record(
            1,
            response_headers={"content-type": "text/event-stream", "cache-control": "no-cache"},
            response_body=SSE_BODY,
            response_size=len(SSE_BODY),
            llm=LlmInfo(
                streamed=True,
                response={"type": "message", "content": [{"type": "text", "text": "Hi"}]},
            ),
        ),
        "error": make_record(
            2,
            status="error",
            error="connection refused by upstream",
            response_headers={},
            response_body=None,
            response_size=0,
            ttfb_ms=None,
            upstream_latency_ms=None,
            total_latency_ms=30.0,
        ),
        "connect": make_record(
            3,
            source="http-proxy",
            agent=None,
            method="CONNECT",
            host="bank.example.com",
            port=443,
            path="bank.example.com:443",
            request_headers={},
            request_body=None,
            request_size=0,
            response_headers={},
            response_body=None,
            response_size=0,
            status=200,
            detected_kind="unknown",
            note="TLS tunnel (not decrypted): 5120 bytes up, 20480 bytes down, 2.5 s",
            proxy_latency_ms=None,
            ttfb_ms=None,
            upstream_latency_ms=None,
            total_latency_ms=2500.0,
        ),
        "in-flight": make_record(
            4,
            status="in-flight",
            response_headers={},
            response_body=None,
            response_size=0,
            ttfb_ms=None,
            upstream_latency_ms=None,
            total_latency_ms=None,
        ),
        "truncated": big,
        "plain-http-port": make_record(
            6,
            scheme="http",
            host="127.0.0.1",
            port=8081,
            path="/health",
            method="GET",
            request_body=None,
            request_size=0,
            detected_kind="app",
        ),
        "ipv6": make_record(7, host="::1", port=8443, path="/v1/chat/completions", status=429),
    }


@pytest.fixture
def har() -> dict[str, Any]:
    return build_har(every_kind().values(), version="0.1.0")


def test_har_validates_against_the_har_1_2_schema(har: dict[str, Any]) -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    errors = sorted(jsonschema.Draft7Validator(SCHEMA).iter_errors(har), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    # and the schema really checks: a broken entry is rejected
    broken = json.loads(json.dumps(har))
    del broken["log"]["entries"][0]["timings"]["wait"]
    broken["log"]["entries"][1]["unknownField"] = 1
    assert len(list(jsonschema.Draft7Validator(SCHEMA).iter_errors(broken))) == 2


def test_har_entries_carry_what_the_spec_says(har: dict[str, Any]) -> None:
    log = har["log"]
    assert log["version"] == "1.2"
    assert log["creator"] == {"name": "llmtap", "version": "0.1.0"}
    entries = {e["_llmtapId"]: e for e in log["entries"]}
    kinds = every_kind()
    assert len(entries) == len(kinds)
    for entry in log["entries"]:
        timings = entry["timings"]
        assert entry["time"] == pytest.approx(
            timings["send"] + timings["wait"] + timings["receive"]
        )
        assert entry["startedDateTime"].endswith("+00:00")
        assert "content" in entry["response"] and "text" in entry["response"]["content"]
    json_entry = log["entries"][0]
    assert json_entry["request"]["url"].startswith(
        "https://api.anthropic.com/v1/messages?beta=true&key="
    )
    assert {"name": "beta", "value": "true"} in json_entry["request"]["queryString"]
    assert json_entry["request"]["postData"]["mimeType"] == "application/json"
    assert json_entry["comment"] == "interesting call"
    assert json_entry["_sessionId"] == "2f0e7a6c-1111-4222-8333-944445555666"
    assert json_entry["_contextKey"] == "0123456789ab"
    assert (
        json_entry["_llm"]["model"] == "claude-sonnet-4-5" and json_entry["_llm"]["tokensIn"] == 10
    )
    assert json_entry["_source"] == "agent-bridge" and json_entry["_detectedKind"] == "llm"
    assert json_entry["timings"] == {
        "blocked": -1,
        "dns": -1,
        "connect": -1,
        "send": 1.5,
        "wait": 80.0,
        "receive": 40.0,
        "ssl": -1,
    }
    assert {"name": "cookie", "value": "[REDACTED]"} in json_entry["request"]["headers"]
    sse, error, connect, in_flight, truncated, plain, ipv6 = log["entries"][1:]
    assert sse["response"]["content"]["mimeType"] == "text/event-stream"
    assert "message_stop" in sse["response"]["content"]["text"]
    assert error["response"]["status"] == 0 and error["response"]["_error"].startswith(
        "connection refused"
    )
    assert error["time"] == 30.0
    assert connect["request"]["method"] == "CONNECT"
    assert connect["request"]["url"] == "https://bank.example.com:443/"
    assert connect["_note"].startswith("TLS tunnel") and connect["time"] == 2500.0
    assert in_flight["response"]["status"] == 0 and in_flight["response"]["_inFlight"] is True
    assert truncated["_bodyTruncated"] is True and truncated["response"]["content"]["size"] == 8000
    assert (
        plain["request"]["url"] == "http://127.0.0.1:8081/health"
        and "postData" not in plain["request"]
    )
    assert ipv6["request"]["url"] == "https://[::1]:8443/v1/chat/completions"
    assert ipv6["response"]["statusText"] == "Too Many Requests"


def test_har_never_carries_a_secret(har: dict[str, Any]) -> None:
    text = json.dumps(har, ensure_ascii=False)
    assert SECRET not in text and SECRET[6:-2] not in text
    # even for records that were never masked (built by hand, not through the buffer)
    raw = make_record(request_headers={"authorization": f"Bearer {SECRET}"}, request_body=SECRET)
    assert SECRET not in json.dumps(build_har([raw], version="x"))


def test_mitmproxy_reads_every_entry(har: dict[str, Any]) -> None:
    records = list(every_kind().values())
    for record, entry in zip(records, har["log"]["entries"], strict=True):
        flow = mitmproxy_har.request_to_flow(entry)
        assert flow.request.method == record.method
        assert flow.request.host == record.host
        assert flow.request.port == record.port
        assert flow.response is not None
        expected_status = record.status if isinstance(record.status, int) else 0
        assert flow.response.status_code == expected_status
        if record.response_body:
            assert flow.response.get_text() == entry["response"]["content"]["text"]
        if record.request_body and record.method != "CONNECT":
            assert flow.request.get_text() == entry["request"]["postData"]["text"]
        assert flow.response.timestamp_end is not None and flow.response.timestamp_start is not None
        assert flow.response.timestamp_end - flow.response.timestamp_start == pytest.approx(
            entry["time"] / 1000, abs=1e-5
        )


def test_har_streams_in_chunks_that_make_the_same_document() -> None:
    records = [make_record(n, response_body="word " * 400) for n in range(50)]
    chunks = list(iter_har(records, version="0.1.0", chunk_bytes=4096))
    assert len(chunks) > 5  # built and handed out record by record, not as one string
    assert all(len(c) < 4096 + 3000 for c in chunks)
    streamed = json.loads(b"".join(chunks))
    assert streamed == build_har(records, version="0.1.0")
    assert len(streamed["log"]["entries"]) == 50
    assert json.loads(b"".join(iter_har([], version="x"))) == {
        "log": {"version": "1.2", "creator": {"name": "llmtap", "version": "x"}, "entries": []}
    }
