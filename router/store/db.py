"""The one deferred SQLite database of the process: open (pragmas + migrations), close, clock.

The database file lives in the data dir, which is created 0700; the file itself is made 0600
(SQLite gives its -wal/-shm files the same mode). Provider API keys are stored as given there
because they are needed to call upstream; they never leave ``store/`` in a serialised record.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peewee import SqliteDatabase

from router.store import migrations
from router.store.sql import execute as execute  # re-exported: the store modules use it from here


# Deferred: tables bind to it at import time, the path is known only once settings are built.
# peewee keeps one connection per thread (thread_safe=True), so the background writers and the
# event loop thread never share a sqlite3 connection; check_same_thread is off because peewee,
# not sqlite3, enforces that.
class _Database(SqliteDatabase):
    """Transactions take the write lock when they begin (BEGIN IMMEDIATE). In WAL mode a
    deferred transaction that reads and then writes fails at once with "database is locked"
    when another connection (a background writer thread) committed in between: SQLite cannot
    wait there without risking a deadlock. Taking the lock up front makes it wait instead
    (busy_timeout)."""

    def atomic(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("lock_type", "IMMEDIATE")
        return super().atomic(*args, **kwargs)


database = _Database(None)

PRAGMAS: dict[str, str | int] = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "foreign_keys": 1,
    "busy_timeout": 5000,
}


class _HideSqlParameters(logging.Filter):
    """peewee logs each query as ``(sql, params)`` at DEBUG; the parameters include provider
    API keys on insert/update. Keep the SQL, drop the values: secrets never reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        if isinstance(msg, tuple) and len(msg) == 2 and isinstance(msg[0], str):
            params = msg[1]
            count = len(params) if isinstance(params, (list, tuple)) else 0
            record.msg, record.args = f"{msg[0]} [{count} parameters hidden]", None
        return True


_PEEWEE_LOG = logging.getLogger("peewee")
if not any(isinstance(f, _HideSqlParameters) for f in _PEEWEE_LOG.filters):
    _PEEWEE_LOG.addFilter(_HideSqlParameters())


def open_database(path: Path) -> None:
    """Point :data:`database` at ``path`` (created 0600 in a 0700 dir) and migrate it."""

    if not database.is_closed():
        database.close()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        path.touch(mode=0o600)
    os.chmod(path, 0o600)
    database.init(str(path), pragmas=PRAGMAS, timeout=5, check_same_thread=False)
    database.connect(reuse_if_open=True)
    migrations.apply(database)


def close_database() -> None:
    """Close this thread's connection (other threads' connections close with their thread)."""
    if database.database is not None and not database.is_closed():
        database.close()


def utcnow() -> datetime:
    return datetime.now(UTC)


def executemany(db: SqliteDatabase, sql: str, rows: Sequence[Sequence[object]]) -> None:
    """One prepared statement for many rows: the batch writers' path, where building SQL per
    row through peewee's query builder costs more than the insert itself."""
    cursor: sqlite3.Cursor = db.cursor()  # type: ignore[no-untyped-call]  # untyped in stubs
    cursor.executemany(sql, rows)


def new_id() -> str:
    return uuid.uuid4().hex
