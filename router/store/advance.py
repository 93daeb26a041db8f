"""The two ways strategy state advances (round-robin turns, strict-random draws), as data.

Each advance says in Python what one step does to the stored JSON value (``apply``). The
in-memory stores run ``apply``; PostgreSQL runs the same step as one ``UPDATE ... RETURNING``
(store/shared.py), so several instances advance one shared value atomically. The stored
value carries what the step produced (the next position; the card drawn), because PostgreSQL
15's ``RETURNING`` sees only the new row.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Turn:
    """Round-robin over ``n`` nodes: serve the first ready node (else the first busy one)
    counting from the stored position, and store the position after the node served, so a
    skipped node does not hand its turn to its neighbour."""

    n: int
    ready: tuple[int, ...]
    busy: tuple[int, ...]

    def apply(self, stored: Any) -> int:
        start = stored % self.n if _is_int(stored) else 0
        rotation = [(start + k) % self.n for k in range(self.n)]
        ready, busy = set(self.ready), set(self.busy)
        order = [i for i in rotation if i in ready] + [i for i in rotation if i in busy]
        chosen = order[0] if order else start
        return (chosen + 1) % self.n

    def chosen(self, stored: int) -> int:
        """The node the turn that stored ``stored`` served."""
        return (stored - 1) % self.n


@dataclass(frozen=True, slots=True)
class Draw:
    """Strict-random: take the first card of ``group`` off the deck dealt for ``keys`` (the
    combo's node list); a deck used up, or dealt for another node list, is replaced by a
    fresh shuffle of every node. Stored as ``{"keys", "deck", "drawn"}``."""

    keys: tuple[str, ...]
    group: frozenset[int]
    rng: random.Random

    def fresh(self) -> list[int]:
        deck = list(range(len(self.keys)))
        self.rng.shuffle(deck)
        return deck

    def apply(self, stored: Any) -> dict[str, Any]:
        n = len(self.keys)
        deck: list[int] = []
        if isinstance(stored, dict) and stored.get("keys") == list(self.keys):
            cards = stored.get("deck")
            if isinstance(cards, list):
                deck = [i for i in cards if _is_int(i) and 0 <= i < n]
        drawn = self._take(deck)
        if drawn is None and self.group:
            deck = self.fresh()
            drawn = self._take(deck)
        return {"keys": list(self.keys), "deck": deck, "drawn": drawn}

    def _take(self, deck: list[int]) -> int | None:
        for pos, i in enumerate(deck):
            if i in self.group:
                del deck[pos]
                return i
        return None

    @staticmethod
    def drawn(stored: Any) -> int | None:
        value = stored.get("drawn") if isinstance(stored, dict) else None
        return value if _is_int(value) else None


Advance = Turn | Draw
