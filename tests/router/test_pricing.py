import json
from importlib import resources

import pytest

from router.pricing import PricingTable, seed
from router.store.records import ModelPrice

REQUIRED = [
    "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3", "o3-mini",
    "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano", "claude-opus-4", "claude-sonnet-4",
    "claude-3-7-sonnet", "claude-3-5-haiku", "claude-haiku-4-5", "claude-sonnet-4-5",
    "claude-opus-4-1", "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite",
    "gemini-2.0-flash", "deepseek-chat", "deepseek-reasoner", "mistral-large", "mistral-small",
    "codestral",
]  # fmt: skip


def test_seed_covers_the_common_models_with_sane_numbers() -> None:
    prices = {p.model: p for p in seed()}
    assert set(REQUIRED) <= set(prices)
    for p in prices.values():
        assert 0 < p.input <= p.output or p.model.startswith("deepseek"), p.model
        assert p.cached is None or p.cached < p.input, p.model
        assert p.context_window and p.context_window >= 32_000, p.model
    assert len(prices) == len(seed())  # no duplicates
    raw = json.loads(resources.files("router").joinpath("pricing.json").read_text())
    assert len(raw["models"]) == len(prices)


@pytest.mark.parametrize(
    ("asked", "found"),
    [
        ("gpt-4o", "gpt-4o"),
        ("GPT-4o", "gpt-4o"),
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("openrouter/anthropic/claude-sonnet-4", "claude-sonnet-4"),
        ("models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-sonnet-4@20250514", "claude-sonnet-4"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("anthropic/claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("mistral-large-2411", "mistral-large-2411"),
        ("mistral-small-2503", "mistral-small"),
        ("codestral-latest", "codestral"),
        ("gemini-2.5-flash-lite-preview-06-17", "gemini-2.5-flash-lite"),
        ("gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"),
        ("gpt-4o-mini-search-preview", "gpt-4o-mini"),
        ("gpt-5-codex", "gpt-5"),
    ],
)
def test_lookup_normalisation(asked: str, found: str) -> None:
    price = PricingTable().lookup(asked)
    assert price is not None and price.model == found


@pytest.mark.parametrize("asked", ["", "llama-3-70b", "gpt-4", "gpt-4ox", "o", "claude"])
def test_lookup_unknown(asked: str) -> None:
    assert PricingTable().lookup(asked) is None


def test_overrides_win_and_keep_seed_metadata() -> None:
    table = PricingTable(
        [
            ModelPrice(model="gpt-4o", input=1.0, output=2.0),
            ModelPrice(model="my-local-model", input=0.0, output=0.0, contextWindow=8192),
        ]
    )
    gpt = table.lookup("gpt-4o-2024-11-20")
    assert gpt is not None and (gpt.input, gpt.output, gpt.cached) == (1.0, 2.0, None)
    assert gpt.context_window == 128_000  # from the seed
    assert table.lookup("ollama/my-local-model") is not None
    assert "my-local-model" in {p.model for p in table.all()}
    assert PricingTable().lookup("gpt-4o").input == 2.5  # type: ignore[union-attr]
    # The seed itself was not changed by the override.
    assert next(p for p in seed() if p.model == "gpt-4o").input == 2.5


def test_exact_override_of_a_snapshot_beats_normalisation() -> None:
    table = PricingTable([ModelPrice(model="claude-sonnet-4-20250514", input=9, output=9)])
    assert table.lookup("claude-sonnet-4-20250514").input == 9  # type: ignore[union-attr]
    assert table.lookup("claude-sonnet-4").input == 3  # type: ignore[union-attr]
