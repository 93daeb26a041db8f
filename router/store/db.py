"""The engine boundary: the process's one database, chosen by URL (SQLite by default,
PostgreSQL for a team gateway), opened and migrated here; raw SQL helpers that hide the
engines' differences.

Everything engine-specific lives in this module and migrations.py: SQLite's pragmas and
``BEGIN IMMEDIATE``, PostgreSQL's placeholders, advisory lock and batched upserts. The
repository modules (providers.py, calllogs.py, ...) are the same code on both.

SQLite: the database file lives in the data dir, which is created 0700; the file itself is
made 0600 (SQLite gives its -wal/-shm files the same mode). Provider API keys are stored as
given there because they are needed to call upstream; they never leave ``store/`` in a
serialised record. PostgreSQL: whoever runs the server owns those controls (docs/deploy.md).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import peewee
from peewee import DatabaseProxy, SqliteDatabase

from router.errors import BadRequest, FieldError
from router.store.drivers import use_postgres_drivers
from router.store.sql import execute as execute  # re-exported: the store modules use it
from router.store.sql import placeholders

Engine = Literal["sqlite", "postgres"]

# Tables bind to the proxy at import time; the real database is known only once settings are
# built. peewee keeps one connection per thread, so background writers and the event loop
# thread never share a connection (SQLite: check_same_thread is off because peewee, not
# sqlite3, enforces that).
database = DatabaseProxy()

PRAGMAS: dict[str, str | int] = {
    "journal_mode": "wal",
    "synchronous": "normal",
    "foreign_keys": 1,
    "busy_timeout": 5000,
}

POSTGRES_SCHEMES = ("postgresql", "postgres")

log = logging.getLogger(__name__)


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


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def redact_url(url: str) -> str:
    """The URL with its password replaced, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def engine_of(target: Path | str) -> Engine:
    """Which engine a database URL (or a bare SQLite path) names; 400 for anything else."""
    if isinstance(target, Path):
        return "sqlite"
    scheme = urlsplit(target).scheme.lower()
    if scheme == "sqlite":
        return "sqlite"
    if scheme in POSTGRES_SCHEMES:
        return "postgres"
    raise BadRequest(
        "unsupported database URL",
        [FieldError("databaseUrl", "expected sqlite:///PATH or postgresql://USER@HOST/DB")],
    )


def _sqlite(path: Path) -> SqliteDatabase:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        path.touch(mode=0o600)
    os.chmod(path, 0o600)
    # Every transaction takes the write lock when it begins (BEGIN IMMEDIATE). In WAL mode a
    # deferred transaction that reads and then writes fails at once with "database is locked"
    # when another connection (a background writer thread) committed in between: SQLite
    # cannot wait there without risking a deadlock. Taking the lock up front makes it wait
    # instead (busy_timeout).
    return SqliteDatabase(
        str(path), pragmas=PRAGMAS, timeout=5, check_same_thread=False, lock_type="IMMEDIATE"
    )


def _postgres(url: str, psycopg3: bool = True) -> peewee.Database:
    from playhouse.db_url import parse
    from playhouse.pool import PooledPostgresqlDatabase

    class _Database(PooledPostgresqlDatabase):  # type: ignore[misc]  # untyped base
        """Survives a server restart or a dropped connection: each thread keeps its
        connection, so a dead one is replaced when it is next used, and a statement that
        failed outside a transaction (nothing half-done) is sent once more on a new one."""

        def cursor(self, named_cursor: Any = None) -> Any:
            if (
                not self.is_closed()
                and not self.in_transaction()
                and not self.is_connection_usable()
            ):
                self.close()
            return super().cursor(named_cursor)

        def execute_sql(self, sql: str, params: Any = None) -> Any:
            try:
                return super().execute_sql(sql, params)
            except (peewee.OperationalError, peewee.InterfaceError):
                if self.in_transaction() or self.is_connection_usable():
                    raise
                log.warning("the database connection was lost; reconnecting")
                self.close()
                return super().execute_sql(sql, params)

    use_postgres_drivers()  # peewee was imported without them (router/store/drivers.py)
    try:
        import psycopg  # noqa: F401  # the driver peewee will use (and the change feed's)
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise BadRequest(
            "PostgreSQL needs the psycopg driver: pip install 'llmtap[postgres]'",
            [FieldError("databaseUrl", "psycopg is not installed")],
        ) from exc
    params: dict[str, Any] = parse(url)
    if not params.get("database"):
        raise BadRequest("invalid database URL", [FieldError("databaseUrl", "names no database")])
    params.setdefault("max_connections", 32)
    params.setdefault("stale_timeout", 300)
    params.setdefault("connect_timeout", 10)
    params.setdefault("application_name", "llmtap")
    # psycopg 3: measured no slower than psycopg2 here, maintained, pipelines executemany
    # (docs/deploy.md); psycopg2 only for that measurement (bench/experiments/gateway.py).
    db: peewee.Database = _Database(prefer_psycopg3=psycopg3, **params)
    return db


def make_database(target: Path | str, *, psycopg3: bool = True) -> peewee.Database:
    """A database object for ``target`` (a SQLite path, ``sqlite:///PATH`` or
    ``postgresql://...``), not yet connected and not bound to :data:`database`.
    ``psycopg3=False``: peewee drives PostgreSQL with psycopg2 (when installed)."""
    if isinstance(target, Path):
        return _sqlite(target)
    if engine_of(target) == "sqlite":
        path = urlsplit(target).path
        return _sqlite(Path(path[1:] if path.startswith("//") else path))
    return _postgres(target, psycopg3)


def connect(target: Path | str) -> Engine:
    """Point :data:`database` at ``target`` and open this thread's connection, without
    migrating."""
    close_database()
    engine = engine_of(target)
    db = make_database(target)
    database.initialize(db)
    db.connect(reuse_if_open=True)
    return engine


def open_database(target: Path | str) -> None:
    """Connect to ``target`` and bring its schema up to date (migrations.py)."""
    from router.store import migrations

    connect(target)
    migrations.apply(database)


def close_database() -> None:
    """Close this thread's connection (other threads' connections close with their thread)."""
    db = database.obj
    if db is not None and db.database is not None and not db.is_closed():
        db.close()


def engine() -> Engine:
    return "postgres" if isinstance(database.obj, peewee.PostgresqlDatabase) else "sqlite"


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


# --------------------------------------------------------------------------- raw SQL


# SQLite runs on this process's CPU, usually the event loop's core: a batch is built and run
# this many rows at a time, and between slices the writer thread steps aside (``sched_yield``),
# so a request that arrives meanwhile waits for one slice, not the whole batch. At one call in
# flight, a 56-row batch at once was the slowest 2% of calls (E1 p99 +2.1 ms over direct; in
# slices +1.4 ms; with the rows built slice by slice too, +1.0-1.1 ms: bench/analysis.md).
YIELD_EVERY = 8


def executemany(db: Any, sql: str, rows: Iterable[Sequence[object]]) -> int:
    """One prepared statement for many rows: the batch writers' path, where building SQL per
    row through peewee's query builder costs more than the insert itself. ``rows`` may be
    lazy: on SQLite they are taken a slice at a time. Returns how many rows ran."""
    cursor = db.cursor()
    sql = placeholders(db, sql)
    if isinstance(db, peewee.PostgresqlDatabase):  # the server works; psycopg 3 pipelines it
        batch = list(rows)
        if batch:
            cursor.executemany(sql, batch)
        return len(batch)
    count = 0
    it = iter(rows)
    while part := list(islice(it, YIELD_EVERY)):
        if count:
            _step_aside()
        cursor.executemany(sql, part)
        count += len(part)
    return count


_step_aside = getattr(os, "sched_yield", lambda: None)  # not on Windows


def upsert_sql(table: str, columns: Sequence[str], key: Sequence[str], rows: int = 1) -> str:
    """``INSERT ... VALUES (...)[, (...)] ON CONFLICT (key) DO UPDATE`` for ``rows`` rows:
    the upsert both engines speak (SQLite >= 3.24), replacing SQLite's INSERT OR REPLACE."""
    values = "(" + ", ".join("?" for _ in columns) + ")"
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([values] * rows)} "
        f"ON CONFLICT ({', '.join(key)}) {action}"
    )


def upsert_rows(
    table: str,
    columns: Sequence[str],
    key: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    unique: bool = False,
) -> int:
    """Insert or update many rows by ``key``, in the caller's transaction, the last row for
    each key winning (as it would row by row). ``unique``: the caller has already kept one
    row per key, and ``rows`` may be lazy (built a slice at a time on SQLite). SQLite: one
    prepared statement run per row (cheapest there). PostgreSQL with psycopg 3: the same,
    pipelined (every row sent before the first reply, one round trip for the batch); measured
    twice as fast here as one multi-row INSERT, which psycopg2 gets instead (its executemany
    waits for each row)."""
    db = database.obj
    per_row = engine() == "sqlite" or _pipelines(db)
    if unique and per_row:
        return executemany(db, upsert_sql(table, columns, key), rows)
    by_key: dict[tuple[object, ...], Sequence[object]] = {}
    positions = [columns.index(k) for k in key]
    for row in rows:
        by_key[tuple(row[p] for p in positions)] = row
    batch = list(by_key.values())
    if not batch:
        return 0
    if per_row:
        return executemany(db, upsert_sql(table, columns, key), batch)
    # A key repeated inside one statement is an error on PostgreSQL: deduplicated above.
    chunk = max(1, 30_000 // len(columns))  # PostgreSQL allows 65535 parameters per statement
    for start in range(0, len(batch), chunk):
        part = batch[start : start + chunk]
        execute(
            db,
            upsert_sql(table, columns, key, len(part)),
            [value for row in part for value in row],
        )
    return len(batch)


def _pipelines(db: Any) -> bool:
    """Does peewee drive ``db`` with psycopg 3 (whose executemany pipelines)?"""
    return type(getattr(db, "_adapter", None)).__name__ == "Psycopg3Adapter"


def upsert(table: Any, /, **values: object) -> None:
    """Insert a row or replace its non-key columns (peewee's ON CONFLICT, both engines)."""
    pk = table._meta.primary_key
    keys = list(pk.field_names) if isinstance(pk, peewee.CompositeKey) else [pk.name]
    fields = [table._meta.fields[k] for k in keys]
    preserve = [table._meta.fields[name] for name in values if name not in keys]
    query = table.insert(**values)
    if preserve:
        query = query.on_conflict(conflict_target=fields, preserve=preserve)
    else:
        query = query.on_conflict_ignore()
    query.execute()
