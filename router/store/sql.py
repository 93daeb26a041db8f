"""Typed raw-SQL helpers shared by the database module and the migrations."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from peewee import SqliteDatabase


def execute(db: SqliteDatabase, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
    """``db.execute_sql`` with a type (peewee's stubs leave it untyped)."""
    cursor: sqlite3.Cursor = db.execute_sql(sql, params)  # type: ignore[no-untyped-call]
    return cursor
