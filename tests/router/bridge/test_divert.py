"""The divert hop's pure parts: router endpoints per format, hop headers and the secret."""

from __future__ import annotations

from router.bridge import divert


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
