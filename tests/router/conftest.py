"""Fixtures for the core's tests that need the store."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from router.store.db import close_database, open_database


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Path]:
    """A fresh, migrated SQLite database in a temp dir (also for what only SQLite has: a
    file, its mode bits, its pragmas)."""
    path = tmp_path / "data" / "llmtap.db"
    open_database(path)
    yield path
    close_database()
