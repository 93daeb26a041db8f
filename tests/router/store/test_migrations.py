from pathlib import Path

import pytest

from router.store import migrations, sessions
from router.store.db import close_database, connect, database, execute, open_database

from .conftest import DbTarget, on_connections


def _tables() -> set[str]:
    return set(database.get_tables())


def _columns(table: str) -> set[str]:
    return {c.name for c in database.get_columns(table)}


@pytest.fixture(params=["sqlite", "postgres"])
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> DbTarget:
    """An empty database (not migrated) on either engine."""
    if request.param == "sqlite":
        return tmp_path / "old.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_apply_is_idempotent(db: DbTarget) -> None:
    version = migrations.current_version(database)
    assert version == len(migrations.MIGRATIONS)
    before = _tables()
    assert migrations.apply(database) == version
    assert _tables() == before
    rows = execute(database, "SELECT COUNT(*) FROM schema_version").fetchone()[0]
    assert rows == version


def test_old_database_is_upgraded(empty: DbTarget) -> None:
    n = len(migrations.MIGRATIONS)
    connect(empty)
    assert migrations.apply(database, migrations.MIGRATIONS[:2]) == 2
    assert "resilience_setting" not in _tables()
    assert "detected_model" not in _tables()
    execute(
        database,
        "INSERT INTO session (id, name, started_at) VALUES ('s1', 'old', "
        "'2024-01-01T00:00:00.000000+00:00')",
    )
    close_database()

    open_database(empty)
    try:
        assert migrations.current_version(database) == n
        assert {"resilience_setting", "detected_model"} <= _tables()
        assert sessions.get("s1").name == "old"  # data from version 2 kept
        assert "effort" in _columns("agent_mapping")
        assert "route_all" in _columns("agent_state")
    finally:
        close_database()


def test_openai_connections_get_the_responses_capability(empty: DbTarget) -> None:
    connect(empty)
    try:
        assert migrations.apply(database, migrations.MIGRATIONS[:4]) == 4
        for cid, kind, url in [
            ("a", "openai", "https://api.openai.com/v1"),
            ("b", "openai", "https://openrouter.ai/api/v1"),
            ("c", "anthropic", "https://api.anthropic.com/v1"),
        ]:
            execute(
                database,
                "INSERT INTO provider_connection (id, provider, name, url, created_at) "
                "VALUES (?, ?, ?, ?, '2024-01-01T00:00:00.000000+00:00')",
                (cid, kind, cid, url),
            )
        assert migrations.apply(database) == len(migrations.MIGRATIONS)
        rows = execute(database, "SELECT id, supports_responses FROM provider_connection")
        assert sorted((r[0], bool(r[1])) for r in rows.fetchall()) == [
            ("a", True),
            ("b", False),
            ("c", False),
        ]
    finally:
        close_database()


def test_newer_schema_is_refused(empty: DbTarget) -> None:
    open_database(empty)
    execute(database, "INSERT INTO schema_version (version) VALUES (999)")
    close_database()
    with pytest.raises(migrations.SchemaTooNew):
        open_database(empty)
    close_database()


def test_sqlite_schema_is_what_shipped(tmp_path: Path) -> None:
    """The engine tokens render to the exact DDL SQLite databases were created with."""
    open_database(tmp_path / "a.db")
    try:
        sql = {
            name: text
            for name, text in execute(
                database, "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
            )
        }
    finally:
        close_database()
    assert "is_active INTEGER NOT NULL DEFAULT 1" in sql["provider_connection"]
    assert "cost_usd REAL DEFAULT 0," in sql["call_log"]  # nullable since 009 (unpriced)
    assert "id INTEGER PRIMARY KEY AUTOINCREMENT" in sql["session_record"]


def test_concurrent_starts_migrate_once(empty: DbTarget) -> None:
    """Four threads (each its own connection) open one empty database at once: every step
    runs once, under the engine's lock (BEGIN IMMEDIATE / pg_advisory_lock)."""
    connect(empty)  # binds the proxy; each thread then opens its own connection
    errors = on_connections(4, lambda: migrations.apply(database))
    try:
        assert errors == []
        versions = [r[0] for r in execute(database, "SELECT version FROM schema_version")]
        assert sorted(versions) == list(range(1, len(migrations.MIGRATIONS) + 1))
    finally:
        close_database()


def test_call_log_cost_becomes_nullable_keeping_rows(empty: DbTarget) -> None:
    """009: a call to a model without a price stores cost NULL ("unknown"); rows written
    before keep their cost, and the table keeps its indexes."""
    from datetime import UTC, datetime

    from router.store import calllogs
    from router.store.records import CallLog

    connect(empty)
    assert migrations.apply(database, migrations.MIGRATIONS[:8]) == 8
    execute(
        database,
        "INSERT INTO call_log (id, timestamp, path, requested_model, status, cost_usd) "
        "VALUES ('old', ?, '/v1/messages', 'm', 200, 0.5)",
        (datetime.now(UTC).isoformat(),),
    )
    close_database()

    open_database(empty)
    try:
        assert migrations.current_version(database) == len(migrations.MIGRATIONS)
        assert calllogs.get_log("old").cost_usd == 0.5
        now = datetime.now(UTC)
        unpriced = CallLog(
            id="new", timestamp=now, path="/v1/messages", requested_model="x", status=200,
            tokens_in=3, cost_usd=None,
        )  # fmt: skip
        calllogs.insert_many([unpriced])
        assert calllogs.get_log("new").cost_usd is None
        totals = calllogs.analytics("day").totals
        assert (totals.requests, totals.cost_usd, totals.unpriced) == (2, 0.5, 1)
        indexes = {i.name for i in database.get_indexes("call_log")}
        assert {"call_log_timestamp", "call_log_model", "call_log_provider"} <= indexes
    finally:
        close_database()
