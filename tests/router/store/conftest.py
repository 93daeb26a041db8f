from collections.abc import Iterator
from pathlib import Path

import pytest

from router.store.db import close_database, open_database


@pytest.fixture
def db_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data" / "llmtap.db"
    open_database(path)
    yield path
    close_database()


def count_rows(table: str) -> int:
    from router.store.db import database, execute

    return int(execute(database, f"SELECT COUNT(*) FROM {table}").fetchone()[0])
