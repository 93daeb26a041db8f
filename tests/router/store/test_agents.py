from datetime import UTC, datetime, timedelta

import pytest

from router.errors import BadRequest
from router.store import agents

from .conftest import DbTarget


def test_mappings_replace_atomically(db: DbTarget) -> None:
    first = agents.replace_mappings(
        "codex", [("gpt-5", "anthropic/claude-sonnet-4"), ("*", "fast")]
    )
    assert [(m.source_model, m.target_model) for m in first] == [
        ("gpt-5", "anthropic/claude-sonnet-4"),
        ("*", "fast"),
    ]
    agents.replace_mappings("claude-code", {"claude-opus-4": "openai/gpt-5"})
    second = agents.replace_mappings("codex", [("o3", "openai/o3")])
    assert [(m.agent_id, m.source_model) for m in second] == [("codex", "o3")]
    assert [m.source_model for m in agents.list_mappings("claude-code")] == ["claude-opus-4"]
    with pytest.raises(BadRequest) as info:
        agents.replace_mappings("codex", [("a", "x"), ("a", "y"), ("", "z"), ("b", " ")])
    assert {d.field for d in info.value.details} == {
        "mappings.1.source",
        "mappings.2.source",
        "mappings.3.target",
    }
    assert agents.list_mappings("codex") == second  # a rejected write changes nothing
    assert agents.replace_mappings("codex", []) == []


def test_agent_state(db: DbTarget) -> None:
    default = agents.get_agent_state("zed")
    assert default.dns_enabled is False and default.last_started_at is None
    assert agents.list_agent_states() == []
    started = datetime(2025, 2, 3, tzinfo=UTC)
    agents.set_agent_state("zed", dns_enabled=True, last_started_at=started, last_error="boom")
    state = agents.set_agent_state("zed", cert_trusted=True)
    assert (state.dns_enabled, state.cert_trusted, state.last_started_at) == (True, True, started)
    assert state.last_error == "boom"
    assert agents.set_agent_state("zed", clear_error=True).last_error is None
    assert agents.set_agent_state("zed", dns_enabled=False).dns_enabled is False
    assert [s.agent_id for s in agents.list_agent_states()] == ["zed"]


def test_bypass_patterns(db: DbTarget) -> None:
    first = agents.replace_bypass(["*.Bank.example", "login.corp.example", "*.bank.example"])
    assert [p.pattern for p in first] == ["*.bank.example", "login.corp.example"]
    assert all(p.source == "user" for p in first)
    created = {p.pattern: p.created_at for p in first}
    second = agents.replace_bypass(["login.corp.example", "*.okta.example"])
    kept = next(p for p in second if p.pattern == "login.corp.example")
    assert kept.created_at == created["login.corp.example"]
    assert {p.pattern for p in second} == {"login.corp.example", "*.okta.example"}
    with pytest.raises(BadRequest) as info:
        agents.replace_bypass(["ok.example", "has space"])
    assert info.value.details[0].field == "patterns.1"
    assert {p.pattern for p in agents.list_bypass()} == {"login.corp.example", "*.okta.example"}
    assert agents.replace_bypass([]) == []


def test_detected_models_accumulate_per_agent(db: DbTarget) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    agents.add_detected_models({("claude-code", "claude-a"): 2, ("codex", "gpt-5"): 1}, t0)
    agents.add_detected_models(
        {("claude-code", "claude-a"): 3, ("claude-code", "claude-b"): 1}, t0 + timedelta(hours=1)
    )
    seen = agents.list_detected_models("claude-code")
    assert [(d.model, d.count) for d in seen] == [("claude-a", 5), ("claude-b", 1)]
    assert seen[0].first_seen == t0 and seen[0].last_seen == t0 + timedelta(hours=1)
    assert [(d.model, d.count) for d in agents.list_detected_models("codex")] == [("gpt-5", 1)]
    assert agents.list_detected_models("zed") == []
    agents.add_detected_models({})  # nothing to do
