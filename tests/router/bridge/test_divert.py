"""The divert hop's pure parts: the mapping rule, effort names, hop headers and the secret."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from router.bridge import divert


@dataclass
class Row:
    source_model: str
    target_model: str
    effort: str | None = None


def test_exact_source_model_wins_then_star_then_none() -> None:
    rows = [Row("*", "openai/gpt-4.1-mini"), Row("claude-opus-4", "anthropic/claude-x", "max")]
    exact = divert.pick_mapping(rows, "claude-opus-4")
    assert exact == divert.MappingRule("claude-opus-4", "anthropic/claude-x", "xhigh")
    assert divert.pick_mapping(rows, "other") == divert.MappingRule("*", "openai/gpt-4.1-mini")
    assert divert.pick_mapping(rows, None) == divert.MappingRule("*", "openai/gpt-4.1-mini")
    assert divert.pick_mapping([Row("claude-opus-4", "x")], "other") is None
    assert divert.pick_mapping([], "m") is None


@pytest.mark.parametrize(
    ("given", "effort"),
    [("none", "none"), ("LOW", "low"), ("medium", "medium"), ("high", "high"),
     ("xhigh", "xhigh"), ("extra", "xhigh"), ("max", "xhigh"), (None, None), ("", None)],
)  # fmt: skip
def test_effort_names(given: str | None, effort: str | None) -> None:
    assert divert.normalize_effort(given) == effort


def test_bad_effort_is_refused_and_ignored_on_a_mapping() -> None:
    with pytest.raises(ValueError):
        divert.normalize_effort("turbo")
    assert divert.pick_mapping([Row("*", "t", "turbo")], "m") == divert.MappingRule("*", "t")


def test_router_paths_per_format() -> None:
    assert divert.router_path("anthropic", "/zen/v1/messages") == "/v1/messages"
    assert divert.router_path("responses", "/backend-api/codex/responses") == "/v1/responses"
    assert divert.router_path("openai-chat", "/chat/completions") == "/v1/chat/completions"
    assert divert.router_path("cloudcode", "/v1internal:generateContent") == (
        "/v1internal:generateContent"
    )
    assert divert.router_path("cloudcode", "/v1internal:streamGenerateContent?alt=sse") == (
        "/v1internal:streamGenerateContent"
    )
    assert divert.router_path("zed", "/completion") is None


def test_hop_headers_need_this_processs_secret() -> None:
    hop = divert.Hop("codex", "agent-bridge", "rid-1", "anthropic/claude-x", "low")
    headers = hop.headers("secret-a")
    assert divert.read_hop(headers, "secret-a") == hop
    assert divert.read_hop(headers, "secret-b") is None
    assert divert.read_hop({**headers, divert.H_SOURCE: "router"}, "secret-a") is None
    assert divert.read_hop({}, "secret-a") is None
    assert divert.read_hop(headers, "") is None
    mixed = {k.upper(): v for k, v in headers.items()} | {"content-type": "application/json"}
    divert.strip_hop(mixed)
    assert mixed == {"content-type": "application/json"}
