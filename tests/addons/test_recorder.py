"""The recorder on its own, with mitmproxy's taddons/tflow: the request half is built once
from what the client sent, so a flow rewritten to the router hop afterwards is still recorded
as the agent's own call, completed in place with the router's answer."""

from __future__ import annotations

import json
from typing import Any

from mitmproxy.test import taddons, tflow, tutils

from addons import meta
from addons.recorder import Recorder


def test_diverted_flow_is_one_record_of_the_agents_own_call() -> None:
    new: list[Any] = []
    updates: list[Any] = []
    recorder = Recorder(new.append, updates.append)
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "hi"}],
    }
    req = tutils.treq(
        host="api.anthropic.com", port=443, scheme=b"https", method=b"POST",
        path=b"/v1/messages", content=json.dumps(body).encode(),
    )  # fmt: skip
    req.headers["host"] = "api.anthropic.com"
    req.headers["content-type"] = "application/json"
    flow = tflow.tflow(req=req)
    flow.metadata.update(
        {
            meta.SOURCE: "agent-bridge",
            meta.AGENT: "claude-code",
            meta.SOURCE_MODEL: "claude-sonnet-4-5",
            meta.MAPPED_MODEL: "fo/gpt-4o-mini",
            meta.DIVERT: ("anthropic", "/v1/messages", "fo/gpt-4o-mini", None),
        }
    )
    with taddons.context(recorder):
        recorder.request(flow)
        # what the divert addon does next: the hop to the router on loopback
        flow.request.scheme, flow.request.host, flow.request.port = "http", "127.0.0.1", 20128
        flow.request.headers["x-llmtap-hop-secret"] = "s"
        answer = {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "gpt-4o-mini",
            "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 5, "output_tokens": 1},
        }  # fmt: skip
        flow.response = tutils.tresp(content=json.dumps(answer).encode())
        flow.response.headers["content-type"] = "application/json"
        flow.response.headers["x-omniroute-provider"] = "fo"
        recorder.response(flow)
    [started], [final] = new, updates
    assert started.id == final.id == flow.metadata[meta.ID]
    for rec in (started, final):
        assert (rec.host, rec.port, rec.scheme, rec.path) == (
            "api.anthropic.com",
            443,
            "https",
            "/v1/messages",
        )
        assert (rec.source, rec.agent) == ("agent-bridge", "claude-code")
        assert (rec.source_model, rec.mapped_model) == ("claude-sonnet-4-5", "fo/gpt-4o-mini")
        assert not [h for h in rec.request_headers if h.startswith("x-llmtap-hop")]
    assert final.status == 200
    assert final.llm is not None and final.llm.provider == "fo"
    assert (final.llm.tokens_in, final.llm.tokens_out) == (5, 1)
