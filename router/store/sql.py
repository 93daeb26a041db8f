"""Raw SQL that serves both engines, shared by db.py and the migrations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# The store writes raw SQL with "?" placeholders (SQLite's); on PostgreSQL they become "%s"
# and a literal "%" is doubled, so one statement text serves both engines.


def placeholders(db: Any, sql: str) -> str:
    if db.param == "?":
        return sql
    return sql.replace("%", "%%").replace("?", db.param)


def execute(db: Any, sql: str, params: Sequence[object] = ()) -> Any:
    """``db.execute_sql`` with engine-neutral placeholders; returns the DB-API cursor."""
    return db.execute_sql(placeholders(db, sql), tuple(params))
