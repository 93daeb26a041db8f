"""One host normalisation for the whole router (it had four copies)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from router.netaddr import normalize_host

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("raw", "name", "authority"),
    [
        (" API.Anthropic.com. ", "api.anthropic.com", "api.anthropic.com"),
        ("api.openai.com:443", "api.openai.com:443", "api.openai.com"),
        ("[::1]:8443", "[::1]:8443", "::1"),
        ("[::1]", "[::1]", "::1"),
        ("::1", "::1", "::1"),  # a bare IPv6 address has no port to drop
        ("x.example.com.:80", "x.example.com.:80", "x.example.com"),
    ],
)
def test_normalize_host(raw: str, name: str, authority: str) -> None:
    assert normalize_host(raw) == name
    assert normalize_host(raw, authority=True) == authority


def test_host_normalisation_lives_in_one_function() -> None:
    """No other module defines a host normaliser of its own (detect.py, store/hosts.py,
    bridge/hostsfile.py and bridge/agents.py each had one)."""
    offenders = []
    for path in [*ROOT.glob("router/**/*.py"), *ROOT.glob("web/**/*.py")]:
        if path.name == "netaddr.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name in (
                "normalize_host",
                "_bare_host",
                "bare_host",
                "normalise_host",
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert offenders == []


def test_every_consumer_agrees() -> None:
    from router.bridge.agents import agent_for_host
    from router.bridge.bypass import BypassMatcher
    from router.traffic.detect import is_llm_host, provider_for_host

    assert is_llm_host("API.ANTHROPIC.COM.:443")
    assert provider_for_host("[api.openai.com]:443") == "openai"
    found = agent_for_host("API.anthropic.com.:443")
    assert found is not None and found.agent_id == "claude-code"
    assert BypassMatcher(["*.bank.example"], defaults=()).matches(" WWW.Bank.Example. ")
