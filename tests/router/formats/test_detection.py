"""Format detection is the codecs' own: each codec claims its paths and bodies, and the
inspector (``detect.call_format``), the ``/v1`` chat handler and the agent catalog ask them."""

from __future__ import annotations

from typing import Any

import pytest

from router.bridge.agents import ChatPath, default_catalog
from router.formats import FORMATS, format_for_body, format_for_path, get_codec
from router.traffic.detect import call_format

PATHS: list[tuple[str, Any, str | None]] = [
    ("/v1/chat/completions", {"messages": []}, "openai-chat"),
    ("/v1/chat/completions?x=1", None, "openai-chat"),
    ("/v1/chat/completions", {"model": "m", "input": "hi"}, "responses"),
    ("/v1/providers/p/chat/completions/", {"input": []}, "responses"),
    ("/v1/responses", None, "responses"),
    ("/v1/responses/resp_1/cancel", None, "responses"),
    ("/backend-api/codex/responses", None, "responses"),
    ("/v1/messages", {"contents": []}, "anthropic"),
    ("/v1/messages/count_tokens", None, "anthropic"),
    ("/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", None, "gemini"),
    ("/v1internal:generateContent", None, "cloudcode"),
    ("/v1/embeddings", {"model": "m", "input": "x"}, None),
    ("/proxy", {"messages": []}, None),
]
BODIES: list[tuple[Any, str | None]] = [
    ({"request": {"contents": []}, "model": "m"}, "cloudcode"),
    ({"contents": []}, "gemini"),
    ({"system_instruction": {"parts": []}}, "gemini"),
    ({"input": []}, "responses"),
    ({"messages": [], "system": "s"}, "anthropic"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]}, "anthropic"),
    ({"messages": [{"role": "user", "content": "hi"}]}, "openai-chat"),
    ({"model": "m"}, None),
    ("not a dict", None),
]


@pytest.mark.parametrize(("path", "body", "fmt"), PATHS)
def test_each_codec_claims_its_own_paths(path: str, body: Any, fmt: str | None) -> None:
    assert format_for_path(path, body) == fmt
    bare = path.partition("?")[0].rstrip("/")
    claims = [name for name in FORMATS if get_codec(name).detect_path(bare, body)]
    # One path, one owner: only a Responses body on the chat path is claimed twice, and the
    # Responses codec, asked first, wins.
    assert claims == ([] if fmt is None else [fmt]) or claims == ["openai-chat", "responses"]


@pytest.mark.parametrize(("body", "fmt"), BODIES)
def test_each_codec_recognises_its_own_bodies(body: Any, fmt: str | None) -> None:
    assert format_for_body(body) == fmt


@pytest.mark.parametrize(("path", "body", "fmt"), PATHS)
def test_the_inspector_asks_the_codecs(path: str, body: Any, fmt: str | None) -> None:
    expected = fmt if fmt is not None or path != "/proxy" else format_for_body(body)
    assert call_format(path, body) == expected


@pytest.mark.parametrize(("body", "fmt"), BODIES)
def test_an_unknown_path_is_decided_by_the_codecs_body_detection(
    body: Any, fmt: str | None
) -> None:
    assert call_format("/some/proxy/path", body) == fmt


def test_the_agent_catalog_takes_codec_formats_from_the_codecs() -> None:
    """agents.json names a format only where no codec claims the path (zed, connect-rpc...)."""
    for agent in default_catalog().agents:
        for chat in agent.chat_paths:
            detected = format_for_path(chat.pattern)
            assert chat.format is None or detected is None, (agent.agent_id, chat.pattern)
            if chat.format is None and "*" not in chat.pattern:
                assert agent.chat_format(chat.pattern) == detected
    with pytest.raises(ValueError, match="no codec claims it"):
        ChatPath(pattern="/v1/unknown")
