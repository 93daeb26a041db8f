"""Claude Code 2.1.x puts ``{"role": "system"}`` entries inside ``messages`` (beside the top-level
``system``). Before: ``400 messages.N.role: expected 'user' or 'assistant'`` on the first call.
Through the router to every upstream kind, with the official Anthropic SDK as the client."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from tests.fakes.upstream import Reply
from tests.web.harness import LANES, Server

SYSTEM = "You are Claude Code."
REMINDER = "<system-reminder>The todo list is empty.</system-reminder>"
MESSAGES: list[dict[str, Any]] = [
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "Hello."},
    {"role": "system", "content": REMINDER},
    {"role": "user", "content": "list the files"},
]


@pytest.mark.parametrize("lane", LANES)
async def test_claude_code_system_role_in_messages_reaches_every_upstream(
    server: Server, lane: str
) -> None:
    server.upstream.script(Reply.text("Done."))
    client = anthropic.AsyncAnthropic(base_url=server.url, api_key="unused")
    message = await client.messages.create(
        model=server.model(lane),
        max_tokens=512,
        system=SYSTEM,
        messages=MESSAGES,  # type: ignore[arg-type]  # the SDK's types predate system entries
    )
    assert message.content[0].type == "text" and message.content[0].text == "Done."
    sent = server.upstream.requests[-1].json
    if lane == "an":
        # Same format: the body is passed through untouched (only the model is the
        # upstream's own name).
        assert sent["messages"] == MESSAGES
        assert sent["system"] == SYSTEM
    elif lane == "oa":
        assert [(m["role"], m["content"]) for m in sent["messages"]] == [
            ("system", SYSTEM),
            ("user", "hi"),
            ("assistant", "Hello."),
            ("system", REMINDER),
            ("user", "list the files"),
        ]
    else:
        assert sent["systemInstruction"]["parts"] == [{"text": SYSTEM}, {"text": REMINDER}]
        assert [c["role"] for c in sent["contents"]] == ["user", "model", "user"]
