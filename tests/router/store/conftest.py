"""The store's tests run on both engines: ``db`` is a fresh, migrated database, SQLite in a
temp dir or PostgreSQL on the session's throwaway cluster (tests/fakes/postgres.py)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from router.store.db import close_database, open_database

DbTarget = Path | str  # a SQLite path or a postgresql:// URL, as open_database takes them


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DbTarget]:
    target: DbTarget
    if request.param == "sqlite":
        target = tmp_path / "data" / "llmtap.db"
    else:
        target = request.getfixturevalue("postgres_url")
    open_database(target)
    yield target
    close_database()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Path]:
    """For what only SQLite has: a file, its mode bits, its pragmas."""
    path = tmp_path / "data" / "llmtap.db"
    open_database(path)
    yield path
    close_database()


def count_rows(table: str) -> int:
    from router.store.db import database, execute

    return int(execute(database, f"SELECT COUNT(*) FROM {table}").fetchone()[0])
