"""The one pricing table: the seed shipped in pricing.json plus the user's overrides."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from importlib import resources

from router.store.records import ModelPrice

# Suffixes that name a snapshot of a model rather than another model:
# claude-sonnet-4-20250514, claude-sonnet-4@20250514 (Vertex), gpt-4o-2024-08-06,
# mistral-large-2411, codestral-2501, anything-latest.
_SNAPSHOT = re.compile(r"(?:[-@]\d{8}|-\d{4}-\d{2}-\d{2}|-\d{4}|-latest)$")
_BOUNDARY_CHARS = ("-", ".", ":", "@")


@cache
def seed() -> tuple[ModelPrice, ...]:
    """The shipped prices, parsed once (the only module-level state; never mutated)."""
    text = resources.files("router").joinpath("pricing.json").read_text(encoding="utf-8")
    return tuple(ModelPrice.model_validate(m) for m in json.loads(text)["models"])


def _bare(model: str) -> str:
    # "openrouter/anthropic/claude-sonnet-4", "models/gemini-2.5-pro" -> the last segment.
    return model.strip().lower().rsplit("/", 1)[-1]


_MAX_REMEMBERED = 4096


def _strip_snapshot(name: str) -> str:
    while (stripped := _SNAPSHOT.sub("", name)) != name and stripped:
        name = stripped
    return name


class PricingTable:
    """Seed prices with ``overrides`` on top (an override replaces the seed entry of the same
    model; context window and max output it leaves unset are taken from the seed)."""

    def __init__(self, overrides: Iterable[ModelPrice] = ()) -> None:
        self.replace(overrides)

    def replace(self, overrides: Iterable[ModelPrice]) -> None:
        """New overrides on the seed, in place: everything that holds this table (the router's
        price function, the strategies' ``price_of``) sees them at once."""
        self._prices: dict[str, ModelPrice] = {p.model.lower(): p for p in seed()}
        for override in overrides:
            key = override.model.lower()
            base = self._prices.get(key)
            if base is not None:
                override = override.model_copy(
                    update={
                        "context_window": override.context_window or base.context_window,
                        "max_output": override.max_output or base.max_output,
                    }
                )
            self._prices[key] = override
        # Longest first, so "gpt-4o-mini-x" prefers gpt-4o-mini over gpt-4o.
        self._by_length = sorted(self._prices, key=len, reverse=True)
        # Every priced call asks for its model: the answer per name, until the table changes.
        self._found: dict[str, ModelPrice | None] = {}

    def all(self) -> list[ModelPrice]:
        return [self._prices[k] for k in sorted(self._prices)]

    def lookup(self, model: str) -> ModelPrice | None:
        """Exact name, then without a ``provider/`` prefix, then without a snapshot suffix,
        then the longest known name that is a prefix of it (ending at a ``-.:@`` boundary)."""
        try:
            return self._found[model]
        except KeyError:
            pass
        found = self._lookup(model)
        if len(self._found) < _MAX_REMEMBERED:  # model names come from clients: bounded
            self._found[model] = found
        return found

    def _lookup(self, model: str) -> ModelPrice | None:
        if not model:
            return None
        exact = self._prices.get(model.strip().lower())
        if exact is not None:
            return exact
        bare = _bare(model)
        for candidate in (bare, _strip_snapshot(bare)):
            if candidate in self._prices:
                return self._prices[candidate]
        name = _strip_snapshot(bare)
        for known in self._by_length:
            if name.startswith(known) and name[len(known) : len(known) + 1] in _BOUNDARY_CHARS:
                return self._prices[known]
        return None
