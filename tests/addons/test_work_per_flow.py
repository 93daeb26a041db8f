"""Work per captured flow, counted by instrumentation (not timed): codec parses, masking passes
and JSON parses for one proxied LLM call and one proxied non-LLM request, through the real
recorder addon (mitmproxy's taddons/tflow) into the real live buffer. A change that adds a
second pass over the same data fails here."""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from addons.recorder import Recorder
from router.traffic.buffer import LiveBuffer
from tests.web.test_work_per_call import counting

REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "say hi " * 200},
    ],
}
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hi " * 200},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 200, "total_tokens": 212},
}


def _flow(
    host: str,
    path: str,
    body: bytes = json.dumps(REQUEST).encode(),
    ctype: str = "application/json",
    answer: bytes = json.dumps(ANSWER).encode(),
    answer_type: str = "application/json",
) -> Any:
    """A finished POST flow; by default the LLM call REQUEST answered with ANSWER."""
    req = tutils.treq(
        host=host, port=443, scheme=b"https", method=b"POST", path=path.encode(), content=body
    )
    req.headers["host"] = host
    req.headers["content-type"] = ctype
    req.headers["authorization"] = "Bearer sk-proj-" + "A" * 40
    flow = tflow.tflow(req=req)
    flow.response = tutils.tresp(content=answer)
    flow.response.headers["content-type"] = answer_type
    return flow


def _calls(flow: Any) -> int:
    """Every call (Python and C) the recorder makes for ``flow``'s request and response, into
    the real live buffer, after one warm-up flow (codec and masking caches filled)."""
    buffer = LiveBuffer(size=10)
    recorder = Recorder(buffer.add, buffer.update)
    calls = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        calls += event in ("call", "c_call")

    with taddons.context(recorder):
        for counted in (False, True):
            this = copy.deepcopy(flow)
            response, this.response = this.response, None
            if counted:
                sys.setprofile(profile)
            try:
                recorder.request(this)
                this.response = response
                recorder.response(this)
            finally:
                sys.setprofile(None)
    assert len(buffer) == 2
    return calls


def _record(flow: Any) -> tuple[LiveBuffer, dict[str, int]]:
    buffer = LiveBuffer(size=10)
    recorder = Recorder(buffer.add, buffer.update)
    response = flow.response
    flow.response = None
    original = http.Message.get_content
    decoded = 0

    def get_content(self: http.Message, strict: bool = True) -> bytes | None:
        nonlocal decoded
        decoded += 1
        return original(self, strict)

    http.Message.get_content = get_content  # type: ignore[method-assign]
    try:
        with taddons.context(recorder), counting() as counts:
            recorder.request(flow)
            flow.response = response
            recorder.response(flow)
    finally:
        http.Message.get_content = original  # type: ignore[method-assign]
    counts["body.decode"] = decoded
    return buffer, dict(counts)


def test_an_llm_call_is_parsed_and_masked_once() -> None:
    flow = _flow("api.openai.com", "/v1/chat/completions")
    buffer, counts = _record(flow)
    [record] = buffer.list()
    assert record.status == 200 and record.llm is not None and record.llm.tokens_out == 200
    assert "sk-proj-" + "A" * 40 not in record.model_dump_json()
    # The codec reads the request once (at `request`, for the context key; the llm summary
    # at the end reuses that parse) and the reply once, and a whole reply is not rendered
    # back into llm.response (the response body is that reply).
    assert {k: v for k, v in counts.items() if k.startswith("codec.")} == {
        "codec.parse_request": 1,
        "codec.parse_response": 1,
    }
    # Read once each (request body, reply body). The masker parses a body only when its
    # text could hold something to mask; neither can (no run of 40 token characters nor a
    # keyed 16, no secret "name=", no bearer, no credential-named key), so both are kept
    # as they came.
    assert counts["json.decode"] == 2
    # The request side is masked once (when the call starts; its final state reuses it), the
    # response side once; the llm summary is masked as it is built, not again by the buffer.
    assert counts["mask.mask_headers"] == 2  # request headers, response headers
    assert counts["mask.mask_body"] == 2  # request body, response body


def test_a_non_llm_flow_does_no_work_beyond_its_headers() -> None:
    """Capture does no work it does not need: traffic that is not an LLM call is recorded by
    its headers (masked), sizes and timings; its bodies are never decoded, parsed or masked."""
    flow = _flow(
        "example.com",
        "/upload",
        b"plain text, nothing to parse",
        "text/plain",
        b"<html>ok</html>",
        "text/html",
    )
    flow.request.headers["x-session-token"] = "t" * 48
    buffer, counts = _record(flow)
    [record] = buffer.list()
    assert record.detected_kind == "unknown" and record.llm is None and record.status == 200
    assert record.request_body is None and record.response_body is None
    assert record.request_size == len(b"plain text, nothing to parse")
    assert record.response_size == len(b"<html>ok</html>")
    assert "t" * 48 not in record.model_dump_json()  # headers are still masked
    assert not {k for k in counts if k.startswith("codec.")}
    assert counts["mask.mask_headers"] == 2 and counts.get("mask.mask_body", 0) == 0
    assert counts.get("json.decode", 0) == 0
    assert counts["body.decode"] == 0


def test_a_json_app_flow_is_app_without_parsing_its_body() -> None:
    flow = _flow(
        "example.com",
        "/api/items",
        json.dumps({"items": [1, 2, 3]}).encode(),
        "application/json",
        json.dumps({"ok": True}).encode(),
        "application/json",
    )
    buffer, counts = _record(flow)
    [record] = buffer.list()
    assert record.detected_kind == "app" and record.request_body is None
    assert counts.get("json.decode", 0) == 0 and counts["body.decode"] == 0


def test_an_llm_body_on_an_unknown_host_is_still_found() -> None:
    """inspector.md's third rule (a JSON body with ``model`` and a prompt field) needs the
    body: it is read when the raw bytes name a model, and only then."""
    flow = _flow("llm.internal.example", "/gateway")
    buffer, counts = _record(flow)
    [record] = buffer.list()
    assert record.detected_kind == "llm" and record.request_body is not None
    assert record.llm is not None and record.llm.tokens_out == 200
    assert counts["codec.parse_request"] == 1


def test_the_flow_path_does_not_read_the_proxy_journal(tmp_path: Any) -> None:
    """The capture tagger asks "is the OS proxy ours?" on every flow: answered from memory,
    read from the on-disk journal once, and again only when llmtap reads or changes it."""
    from addons.modes import CaptureModes
    from router.bridge.journal import Journal
    from router.settings import build

    settings = build(cli={"data_dir": tmp_path}, env={})
    modes = CaptureModes(settings, master=None)
    reads = 0
    original = Journal.read

    def counted(self: Journal) -> Any:
        nonlocal reads
        reads += 1
        return original(self)

    Journal.read = counted  # type: ignore[method-assign]
    try:
        assert not any(modes.system_proxy_active() for _ in range(1000))
    finally:
        Journal.read = original  # type: ignore[method-assign]
    assert reads <= 1  # once (lazily or at construction), never per flow


def test_the_recorder_work_per_flow_is_bounded() -> None:
    """The whole recorder path for one flow, counted in calls (not timed): the LLM call is
    built once from masked values without validation (it was 888 calls at `cad0737`: a
    pydantic validation per record and per llm summary, a copy per publish, a second read of
    the reply, the buffer masking the record again, mitmproxy's header accessors per lookup;
    601 after), a non-LLM flow by its headers alone (461 at `cad0737`, 273 after).
    Bounds, not exact figures: a mitmproxy or pydantic release moves them a little."""
    llm = _calls(_flow("api.openai.com", "/v1/chat/completions"))
    other = _calls(
        _flow("example.com", "/upload", b"plain", "text/plain", b"<p>ok</p>", "text/html")
    )
    assert llm <= 640, llm
    assert other <= 300, other
