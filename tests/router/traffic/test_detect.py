"""LLM detection order, wire-format detection, provider and the context key of all five shapes."""

from __future__ import annotations

import hashlib

import pytest

from router.traffic.detect import (
    KNOWN_LLM_HOSTS,
    call_format,
    context_key,
    detect_kind,
    is_llm_host,
    provider_for_host,
    system_prompt,
)

SYSTEM = "You are a careful coding agent."
KEY = hashlib.sha256(SYSTEM.encode()).hexdigest()[:12]


@pytest.mark.parametrize("host", sorted(KNOWN_LLM_HOSTS))
def test_known_hosts_are_llm(host: str) -> None:
    assert detect_kind(host, "/") == "llm"
    assert detect_kind(host.upper() + ":443", "/health") == "llm"


def test_detection_order() -> None:
    # Azure resources, with their own names, and trailing-dot FQDNs.
    assert detect_kind("my-res.openai.azure.com.", "/") == "llm"
    # Agent hosts only count when the caller passes them.
    assert detect_kind("api.githubcopilot.com", "/") == "unknown"
    assert (
        detect_kind("api.githubcopilot.com", "/", extra_llm_hosts={"api.githubcopilot.com"})
        == "llm"
    )
    # An LLM path on any host.
    for path in (
        "/v1/chat/completions",
        "/openai/deployments/x/completions?api-version=1",
        "/zen/v1/messages",
        "/backend-api/codex/responses",
        "/v1/embeddings",
        "/v1beta/models/gemini-2.5-pro:generateContent",
        "/v1internal:streamGenerateContent?alt=sse",
        "/generateAssistantResponse",
    ):
        assert detect_kind("internal.example", path) == "llm", path
    # A JSON body with a prompt field and a model.
    for field in ("messages", "contents", "input", "prompt"):
        assert detect_kind("x.example", "/run", body={"model": "m", field: []}) == "llm"
    # A prompt field without a model is just JSON.
    assert detect_kind("x.example", "/run", body={"messages": []}) == "app"
    # An agent User-Agent.
    assert detect_kind("x.example", "/rpc", user_agent="claude-cli/1.0.30 (external, cli)") == "llm"
    assert detect_kind("x.example", "/rpc", user_agent="GitHubCopilotChat/0.26") == "llm"
    assert detect_kind("x.example", "/rpc", user_agent="curl/8.5") == "unknown"
    # JSON in either direction otherwise means app.
    assert detect_kind("x.example", "/api/users", body_is_json=True) == "app"
    assert detect_kind("x.example", "/index.html") == "unknown"


def test_custom_host_kind_wins() -> None:
    assert detect_kind("api.openai.com", "/v1/chat/completions", custom_kind="app") == "app"
    assert detect_kind("intranet.example", "/", custom_kind="llm") == "llm"
    # "custom" is the user's "not classified": detection decides.
    assert detect_kind("api.openai.com", "/", custom_kind="custom") == "llm"
    assert detect_kind("intranet.example", "/", custom_kind="custom") == "unknown"


def test_is_llm_host_normalizes() -> None:
    assert is_llm_host("API.OpenAI.com:443")
    assert is_llm_host("[::1]:8443", extra_llm_hosts=["::1"])
    assert not is_llm_host("openai.azure.com.evil.example")


def test_provider_for_host() -> None:
    assert provider_for_host("api.anthropic.com") == "anthropic"
    assert provider_for_host("generativelanguage.googleapis.com") == "gemini"
    assert provider_for_host("res.openai.azure.com") == "azure"
    assert provider_for_host("daily-cloudcode-pa.googleapis.com") == "cloudcode"
    assert provider_for_host("api.x.ai") == "xai"
    agents = {"api.githubcopilot.com": "copilot"}
    assert provider_for_host("api.githubcopilot.com", agents.get) == "copilot"
    assert provider_for_host("unknown.example", agents.get) is None
    assert provider_for_host("unknown.example") is None


def test_call_format_path_first_then_body() -> None:
    assert call_format("/v1/chat/completions", {"messages": []}) == "openai-chat"
    assert call_format("/v1/chat/completions", {"input": "hi", "model": "m"}) == "responses"
    assert call_format("/v1/chat/completions", {"input": "hi", "messages": []}) == "openai-chat"
    assert call_format("/v1/messages?beta=true") == "anthropic"
    assert call_format("/v1/messages/count_tokens") == "anthropic"
    assert call_format("/backend-api/codex/responses") == "responses"
    assert call_format("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse") == "gemini"
    assert call_format("/v1internal:generateContent") == "cloudcode"
    # The path wins over a body that looks like another format.
    assert call_format("/v1/messages", {"contents": []}) == "anthropic"
    # An LLM path without a codec, and an unknown path decided by the body.
    assert call_format("/v1/embeddings", {"model": "m", "input": "x"}) is None
    assert call_format("/generateAssistantResponse") is None
    assert call_format("/proxy", {"request": {"contents": []}, "model": "m"}) == "cloudcode"
    assert call_format("/proxy", {"contents": []}) == "gemini"
    assert call_format("/proxy", {"input": []}) == "responses"
    assert call_format("/proxy", {"messages": [], "system": "s"}) == "anthropic"
    assert call_format("/proxy", {"messages": [{"role": "user", "content": "hi"}]}) == "openai-chat"
    assert call_format("/proxy", "not a dict") is None


USER = {"role": "user", "content": "x"}


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("anthropic", {"model": "m", "max_tokens": 1, "system": SYSTEM, "messages": [USER]}),
        (
            "anthropic",
            {
                "model": "m",
                "max_tokens": 1,
                "system": [
                    {"type": "text", "text": "You are a careful"},
                    {"type": "text", "text": "coding agent."},
                ],
                "messages": [USER],
            },
        ),
        ("openai-chat", {"model": "m", "messages": [{"role": "system", "content": SYSTEM}, USER]}),
        (
            "openai-chat",
            {
                "model": "m",
                "messages": [{"role": "developer", "content": [{"type": "text", "text": SYSTEM}]}],
            },
        ),
        ("responses", {"model": "m", "instructions": SYSTEM, "input": "hi"}),
        (
            "responses",
            {
                "model": "m",
                "input": [
                    {"role": "developer", "content": [{"type": "input_text", "text": SYSTEM}]}
                ],
            },
        ),
        ("gemini", {"systemInstruction": {"parts": [{"text": SYSTEM}]}, "contents": []}),
        ("gemini", {"system_instruction": {"parts": [{"text": SYSTEM}]}, "contents": []}),
        (
            "cloudcode",
            {
                "model": "m",
                "request": {
                    "systemInstruction": {"role": "user", "parts": [{"text": SYSTEM}]},
                    "contents": [],
                },
            },
        ),
    ],
)
def test_context_key_for_every_shape(kind: str, body: dict[str, object]) -> None:
    prompt = system_prompt(kind, body)
    assert prompt is not None
    expected = hashlib.sha256(prompt.encode()).hexdigest()[:12]
    assert context_key(kind, body) == expected
    assert len(expected) == 12 and int(expected, 16) >= 0
    if "You are a careful" in prompt and "\n" not in prompt:
        assert expected == KEY
    # Without the kind, the shape is guessed from the body.
    assert context_key(None, body) == expected


def test_no_system_prompt_means_no_key() -> None:
    chat = {"model": "m", "messages": [{"role": "user", "content": SYSTEM}]}
    assert context_key("openai-chat", chat) is None
    anthropic = {"model": "m", "max_tokens": 1, "system": "", "messages": []}
    assert context_key("anthropic", anthropic) is None
    assert context_key("gemini", {"contents": []}) is None
    assert context_key("cloudcode", {"request": "bad"}) is None
    assert context_key("responses", None) is None
    assert context_key("anthropic", {**anthropic, "system": SYSTEM}) != context_key(
        "anthropic", {**anthropic, "system": SYSTEM + "!"}
    )
    # A body its codec rejects gets no key rather than one from a second, looser reading.
    assert context_key("anthropic", {"system": SYSTEM, "messages": "nope"}) is None


def test_context_key_is_the_ir_system_prompt_and_ignores_later_system_entries() -> None:
    """One walk: the key hashes what the codec puts in the IR's system prompt, so a system
    entry between the turns (Claude Code 2.1.x, chat apps) does not change a session's key."""
    first = {"model": "m", "max_tokens": 1, "system": SYSTEM, "messages": [USER]}
    later = {**first, "messages": [USER, {"role": "system", "content": "reminder"}, USER]}
    assert context_key("anthropic", first) == context_key("anthropic", later) == KEY
    chat = {"model": "m", "messages": [{"role": "system", "content": SYSTEM}, USER]}
    chat_later = {**chat, "messages": [*chat["messages"], {"role": "system", "content": "r"}]}
    assert context_key("openai-chat", chat) == context_key("openai-chat", chat_later) == KEY
