"""A diverted agent call's record carries the request the router sent upstream (issue 13):
the agent's Anthropic call to its own host, mapped to an OpenAI connection, shows beside the
client's body the translated Chat body with the mapped model, masked, in the same record."""

from __future__ import annotations

import asyncio
import json
import time

from tests.addons.agentstack import Stack, stack
from tests.addons.test_divert_e2e import CASES, WORDS, call_via_proxy, final_records
from tests.addons.test_http_proxy import records
from tests.fakes.upstream import Reply

__all__ = ["stack"]  # the fixture, imported for this module's tests


async def test_a_diverted_record_shows_the_request_sent_upstream(stack: Stack) -> None:
    case = next(c for c in CASES if c.fmt == "anthropic" and not c.target.startswith("fa/"))
    stack.map(case.agent, [("*", case.target)])
    stack.upstream.script(Reply.text("".join(WORDS), chunks=WORDS))
    status, _, text, _ = await call_via_proxy(stack.app, case, stream=False)
    assert status == 200, text
    (rec,) = final_records(stack.app, case.host, 1)
    deadline = time.monotonic() + 10
    while rec.get("upstreamRequest") is None and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        rec = next(r for r in records(stack.app) if r["id"] == rec["id"])
    up = rec["upstreamRequest"]
    assert up is not None, rec
    assert up["url"] == stack.upstream.url + "/v1/chat/completions"
    assert up["format"] == "openai-chat"
    sent = json.loads(up["body"])
    assert sent["model"] == case.target.split("/", 1)[1]
    assert sent["messages"][-1]["content"] in ("say hi", [{"type": "text", "text": "say hi"}])
    # The client's side stays the agent's own Anthropic body, model as the agent sent it.
    assert json.loads(rec["requestBody"])["model"] == "claude-sonnet-4-5"
    assert "agent-own" not in json.dumps(rec)
    assert up["headers"].get("authorization", "Bearer ***").endswith("***")
