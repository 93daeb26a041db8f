"""The IR's shared tables: reasoning effort <-> thinking budget, one table for every codec."""

from __future__ import annotations

from dataclasses import replace

import pytest

from router import ir
from router.formats import get_codec


def budget_request(source: str, budget: int, model: str) -> ir.Request:
    return ir.Request(
        model=model,
        messages=[ir.Message("user", [ir.TextBlock("hi")])],
        thinking_budget=budget,
        source_format=source,
    )


def test_a_10k_budget_is_the_same_effort_on_every_path() -> None:
    """Before: Anthropic's parser called a 10k budget "high", the OpenAI renderers "medium"."""
    parsed = get_codec("anthropic").parse_request(
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 20000,
            "thinking": {"type": "enabled", "budget_tokens": 10000},
            "messages": [{"role": "user", "content": "hi"}],
        }
    )
    chat = get_codec("openai-chat").render_request(budget_request("gemini", 10000, "o3"))
    responses = get_codec("responses").render_request(budget_request("gemini", 10000, "o3"))
    assert parsed.reasoning_effort == ir.effort_for_budget(10000)
    assert chat["reasoning_effort"] == ir.effort_for_budget(10000)
    assert responses["reasoning"] == {"effort": ir.effort_for_budget(10000)}
    assert ir.effort_for_budget(10000) == "medium"


@pytest.mark.parametrize("effort", ["minimal", "low", "medium", "high", "xhigh"])
def test_an_effort_is_the_same_budget_for_anthropic_and_gemini(effort: ir.Effort) -> None:
    """Before: Gemini had its own budgets (low was 1024 there, 2048 for Anthropic)."""
    req = ir.Request(
        model="m",
        messages=[ir.Message("user", [ir.TextBlock("hi")])],
        reasoning_effort=effort,
        max_tokens=100000,
        source_format="openai-chat",
    )
    anthropic = get_codec("anthropic").render_request(replace(req, model="claude-x"))
    gemini = get_codec("gemini").render_request(replace(req, model="gemini-2.5-pro"))
    assert anthropic["thinking"]["budget_tokens"] == ir.budget_for_effort(effort)
    assert gemini["generationConfig"]["thinkingConfig"]["thinkingBudget"] == ir.budget_for_effort(
        effort
    )


def test_budget_to_effort_round_trips_and_stays_within_what_every_api_accepts() -> None:
    for effort in ("low", "medium", "high"):
        assert ir.effort_for_budget(ir.budget_for_effort(effort)) == effort
    assert ir.effort_for_budget(0) == "low"
    assert ir.effort_for_budget(1024) == "low"
    assert ir.effort_for_budget(16383) == "medium"
    assert ir.effort_for_budget(10**6) == "high"
