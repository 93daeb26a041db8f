"""JSONL export: one camelCase record per line, masked, and it reads back unchanged."""

from __future__ import annotations

import json

from router.traffic.jsonl import iter_jsonl, parse_jsonl
from router.traffic.masking import mask_record
from router.traffic.record import InterceptedRequest, LlmInfo
from tests.router.traffic.factory import make_record

SECRET = "sk-" + "J50nL1n3s" * 5


def test_jsonl_round_trip() -> None:
    records = [
        make_record(
            0,
            llm=LlmInfo(
                model="m",
                tokens_in=3,
                conversation={"request": [], "response": [], "contextKey": None},
            ),
        ),
        make_record(1, status="in-flight", response_body=None, note="multi\nline\nnote"),
        make_record(
            2, status="error", error="boom", body_truncated=True, pid=4242, process_name="node"
        ),
    ]
    lines = list(iter_jsonl(records))
    assert len(lines) == 3 and all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    first = json.loads(lines[0])
    assert {"requestHeaders", "responseBody", "detectedKind", "totalLatencyMs"} <= set(first)
    assert "request_headers" not in first
    assert first["llm"]["tokensIn"] == 3 and first["status"] == 200
    assert json.loads(lines[1])["status"] == "in-flight"
    back = parse_jsonl("".join(lines))
    assert back == [mask_record(r) for r in records]
    assert back[2].process_name == "node" and back[2].status == "error"


def test_jsonl_is_masked() -> None:
    record = make_record(
        request_headers={"x-api-key": SECRET}, request_body=json.dumps({"prompt": SECRET})
    )
    text = "".join(iter_jsonl([record]))
    assert SECRET not in text


def test_wire_names_are_camel_case_and_snake_case_is_accepted() -> None:
    record = make_record()
    wire = record.to_wire()
    assert wire["requestSize"] == record.request_size and wire["timestamp"].startswith(
        "2025-05-01T12:00:00"
    )
    assert InterceptedRequest.model_validate(wire) == record
    assert InterceptedRequest.model_validate(record.model_dump(by_alias=False)) == record
