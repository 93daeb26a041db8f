"""The nine agents as data: lookups, chat paths, honest divert support."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from router.bridge.agents import (
    DEFAULT_FILE,
    agent_for_host,
    all_hosts,
    default_catalog,
    hosts_of,
    is_chat_path,
    load_catalog,
)


def test_nine_agents_with_honest_divert() -> None:
    cat = default_catalog()
    assert [a.agent_id for a in cat.agents] == [
        "antigravity", "claude-code", "codex", "copilot", "open-code", "zed", "kiro", "cursor",
        "trae",
    ]  # fmt: skip
    divert = {a.agent_id for a in cat.agents if a.divert}
    assert divert == {"antigravity", "claude-code", "codex", "copilot", "open-code"}
    for a in cat.agents:
        assert a.divert or a.capture_only_reason
    trae = cat.get("trae")
    assert trae is not None and trae.hosts == () and trae.chat_paths == ()


@pytest.mark.parametrize(
    ("host", "agent"),
    [
        ("api.anthropic.com", "claude-code"),
        ("API.Anthropic.COM:443", "claude-code"),
        ("chatgpt.com", "codex"),
        ("api.enterprise.githubcopilot.com", "copilot"),
        ("daily-cloudcode-pa.sandbox.googleapis.com", "antigravity"),
        ("q.us-east-1.amazonaws.com", "kiro"),
        ("api2.cursor.sh.", "cursor"),
        ("example.com", None),
        ("[::1]:443", None),
    ],
)
def test_agent_for_host(host: str, agent: str | None) -> None:
    found = agent_for_host(host)
    assert (found.agent_id if found else None) == agent


@pytest.mark.parametrize(
    ("agent_id", "path", "fmt"),
    [
        ("claude-code", "/v1/messages?beta=true", "anthropic"),
        ("claude-code", "/v1/messages/count_tokens", None),
        ("antigravity", "/v1internal:streamGenerateContent?alt=sse", "cloudcode"),
        ("antigravity", "/v1internal:loadCodeAssist", None),
        ("codex", "/backend-api/codex/responses", "responses"),
        ("copilot", "/chat/completions", "openai-chat"),
        ("copilot", "/responses", "responses"),
        ("copilot", "/models", None),
        ("open-code", "/zen/v1/messages", "anthropic"),
        ("open-code", "/api/v1/chat/completions", "openai-chat"),
        ("cursor", "/aiserver.v1.ChatService/StreamUnifiedChatWithTools", "connect-rpc"),
        ("cursor", "/auth/poll", None),
        ("zed", "/completion", "zed"),
    ],
)
def test_chat_paths(agent_id: str, path: str, fmt: str | None) -> None:
    agent = default_catalog().get(agent_id)
    assert agent is not None
    assert agent.chat_format(path) == fmt
    assert is_chat_path(agent, path) is (fmt is not None)


def test_hosts_and_user_agents() -> None:
    hosts = all_hosts()
    assert len(hosts) == len(set(hosts)) == 4 + 1 + 2 + 5 + 2 + 2 + 2 + 3
    assert hosts_of(["claude-code", "codex"]) == [
        "api.anthropic.com",
        "api.openai.com",
        "chatgpt.com",
    ]
    ua = default_catalog().agent_for_user_agent("claude-cli/1.0.80 (external, cli)")
    assert ua is not None and ua.agent_id == "claude-code"


def test_user_file_overrides_and_is_validated(tmp_path: Path) -> None:
    data = json.loads(DEFAULT_FILE.read_text())
    trae = next(a for a in data["agents"] if a["agent_id"] == "trae")
    trae["hosts"] = ["api.trae.example"]
    path = tmp_path / "agents.json"
    path.write_text(json.dumps(data))
    cat = load_catalog(path)
    assert agent_for_host("api.trae.example", cat) is not None
    assert agent_for_host("api.trae.example") is None  # the packaged default is untouched

    trae.pop("capture_only_reason")
    path.write_text(json.dumps(data))
    with pytest.raises(ValidationError, match="must say why"):
        load_catalog(path)

    trae["capture_only_reason"] = "x"
    trae["hosts"] = ["api.anthropic.com"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValidationError, match="belongs to both"):
        load_catalog(path)
