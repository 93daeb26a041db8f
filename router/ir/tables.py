"""The IR's shared tables: reasoning effort <-> thinking budget, and what the codecs need to
know about model families."""

from __future__ import annotations

import re

from router.ir.model import Effort

# --------------------------------------------------------------------------- reasoning effort

# The one table between reasoning effort (OpenAI, Gemini 3 levels) and thinking budget
# (Anthropic, Gemini 2.x), in tokens; every codec converts through it.
EFFORT_BUDGET: dict[Effort, int] = {
    "none": 0,
    "minimal": 1024,  # Anthropic's smallest allowed budget
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32000,
}
# Gemini 3's thinkingLevel for each effort, and back.
EFFORT_LEVEL: dict[Effort, str] = {
    "none": "minimal",
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
}
LEVEL_EFFORT: dict[str, Effort] = {
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
}
# What a budget becomes: only the levels every reasoning API accepts.
_BUDGET_EFFORTS: tuple[Effort, ...] = ("low", "medium", "high")


def budget_for_effort(effort: Effort) -> int:
    return EFFORT_BUDGET[effort]


def effort_for_budget(budget: int) -> Effort:
    """The highest of low/medium/high whose budget ``budget`` reaches (low below that), so
    ``effort_for_budget(budget_for_effort(e)) == e`` for those three."""
    chosen: Effort = "low"
    for effort in _BUDGET_EFFORTS:
        if budget >= EFFORT_BUDGET[effort]:
            chosen = effort
    return chosen


# --------------------------------------------------------------------------- model knowledge

_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
_CLAUDE_FAMILY = re.compile(r"(opus|sonnet|haiku)-(\d)(?!\d)(?:[-.](\d)(?!\d))?")


def is_openai_reasoning_model(model: str) -> bool:
    """OpenAI reasoning models take ``max_completion_tokens`` and reject sampling knobs."""
    name = model.rsplit("/", 1)[-1].lower()
    return name.startswith(_REASONING_PREFIXES)


def claude_output_limits(model: str) -> tuple[int, int | None]:
    """``(default max_tokens, max output cap or None when unknown)`` for a Claude model name.

    The default is deliberately below the cap: Anthropic counts ``max_tokens`` against the
    output-tokens-per-minute rate limit, so asking for the whole window by default hurts."""
    name = model.lower()
    if match := _CLAUDE_FAMILY.search(name):
        family, major, minor = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        if major >= 4:
            # Opus 4 and 4.1 stop at 32k output; the later 4.x models allow 64k.
            cap = 32000 if family == "opus" and (major, minor) < (4, 5) else 64000
            return 32000, cap
    if re.search(r"claude-3[-.]7", name):
        return 32000, 64000
    if re.search(r"claude-3[-.]5", name):
        return 8192, 8192
    if "claude-3" in name:
        return 4096, 4096
    return 4096, None
