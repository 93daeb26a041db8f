"""Strategy state (round-robin positions, strict-random decks) kept in memory and written
behind to the database, so it survives restarts without the request path touching SQLite."""

from __future__ import annotations

import json
from typing import Any

from router.store import config
from router.store.advance import Advance
from router.store.writer import BatchWriter, StoreWriter


class PersistentState:
    """A ``StateStore`` (router/routing/strategies.py): reads from memory, writes behind."""

    def __init__(self, writer: StoreWriter | None = None) -> None:
        self._data = {key: json.dumps(value) for key, value in config.all_states().items()}
        self._writer: BatchWriter[tuple[str, Any]] = BatchWriter(
            lambda items: config.set_states(dict(items)), name="llmtap-state-writer", writer=writer
        )

    def get(self, key: str) -> Any:
        raw = self._data.get(key)
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value: Any) -> None:
        encoded = json.dumps(value)  # a value that is not JSON fails here, not in the writer
        self._data[key] = encoded
        self._writer.submit((key, json.loads(encoded)))

    def advance(self, key: str, step: Advance) -> Any:
        """One process per SQLite database: the dict is the truth, advanced on the event
        loop thread (no other thread touches it); the database is written behind."""
        new = step.apply(self.get(key))
        self.set(key, new)
        return new

    def flush(self, timeout: float | None = 5.0) -> bool:
        return self._writer.flush(timeout)

    def close(self) -> None:
        self._writer.close()
