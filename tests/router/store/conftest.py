"""The store's tests run on both engines: ``db`` is a fresh, migrated database, SQLite in a
temp dir or PostgreSQL on the session's throwaway cluster (tests/fakes/postgres.py)."""

import threading
from collections.abc import Callable, Iterator
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


def count_rows(table: str) -> int:
    from router.store.db import database, execute

    return int(execute(database, f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def on_connections(count: int, work: Callable[[], object]) -> list[BaseException]:
    """Run ``work`` in ``count`` threads released together, each on a connection of its own
    (closed when its work ends), as that many llmtap instances would; returns what they
    raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run() -> None:
        try:
            barrier.wait(10)
            work()
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_database()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors
