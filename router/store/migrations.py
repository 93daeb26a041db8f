"""Ordered schema migrations and the ``schema_version`` table that records how far a DB got.

Each migration is plain SQL (not ``create_tables`` on today's models), so an old database is
upgraded step by step to exactly the schema a new one gets. Append only; never edit a
migration that has shipped.
"""

from __future__ import annotations

from collections.abc import Callable

from peewee import SqliteDatabase

from router.store.sql import execute

Migration = Callable[[SqliteDatabase], None]


class SchemaTooNew(RuntimeError):
    """The database was written by a newer llmtap; refusing to guess at its schema."""


def _run(db: SqliteDatabase, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            execute(db, statement)


def _001_router_core(db: SqliteDatabase) -> None:
    _run(
        db,
        """
        CREATE TABLE provider_connection (
            id TEXT PRIMARY KEY,
            provider TEXT NOT NULL,
            name TEXT NOT NULL UNIQUE,
            url TEXT NOT NULL,
            api_key TEXT,
            is_active INTEGER NOT NULL DEFAULT 1,
            max_concurrent INTEGER,
            priority INTEGER NOT NULL DEFAULT 0,
            test_status TEXT NOT NULL DEFAULT 'unknown',
            models TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL
        );
        CREATE TABLE provider_models (
            connection_id TEXT PRIMARY KEY
                REFERENCES provider_connection (id) ON DELETE CASCADE,
            models TEXT NOT NULL,
            fetched_at TEXT NOT NULL
        );
        CREATE TABLE api_key (
            id TEXT PRIMARY KEY,
            label TEXT NOT NULL,
            key_hash TEXT NOT NULL UNIQUE,
            key_preview TEXT NOT NULL,
            is_active INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL
        );
        CREATE TABLE combo (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            model TEXT,
            strategy TEXT NOT NULL,
            nodes TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL
        );
        CREATE TABLE model_alias (alias TEXT PRIMARY KEY, target TEXT NOT NULL);
        CREATE TABLE fallback_chain (model TEXT PRIMARY KEY, chain TEXT NOT NULL);
        CREATE TABLE model_price (model TEXT PRIMARY KEY, data TEXT NOT NULL);
        CREATE TABLE setting (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE router_state (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE call_log (
            id TEXT PRIMARY KEY,
            timestamp TEXT NOT NULL,
            path TEXT NOT NULL,
            requested_model TEXT NOT NULL,
            provider TEXT,
            connection_id TEXT,
            model TEXT,
            combo TEXT,
            attempt INTEGER NOT NULL DEFAULT 1,
            attempts TEXT NOT NULL DEFAULT '[]',
            status INTEGER NOT NULL,
            tokens_in INTEGER NOT NULL DEFAULT 0,
            tokens_out INTEGER NOT NULL DEFAULT 0,
            cache_read_tokens INTEGER NOT NULL DEFAULT 0,
            cache_write_tokens INTEGER NOT NULL DEFAULT 0,
            reasoning_tokens INTEGER NOT NULL DEFAULT 0,
            usage_estimated INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            latency_ms REAL,
            ttft_ms REAL,
            source_format TEXT,
            target_format TEXT,
            api_key_id TEXT,
            agent TEXT,
            streamed INTEGER NOT NULL DEFAULT 0,
            dropped_fields TEXT NOT NULL DEFAULT '[]',
            error TEXT
        );
        CREATE INDEX call_log_timestamp ON call_log (timestamp)
        """,
    )


def _002_inspector_and_bridge(db: SqliteDatabase) -> None:
    _run(
        db,
        """
        CREATE TABLE session (
            id TEXT PRIMARY KEY,
            name TEXT,
            profile TEXT,
            started_at TEXT NOT NULL,
            ended_at TEXT
        );
        CREATE TABLE session_record (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id TEXT NOT NULL REFERENCES session (id) ON DELETE CASCADE,
            record_id TEXT NOT NULL,
            data TEXT NOT NULL
        );
        CREATE UNIQUE INDEX session_record_session_id_record_id
            ON session_record (session_id, record_id);
        CREATE TABLE custom_host (
            host TEXT PRIMARY KEY,
            enabled INTEGER NOT NULL DEFAULT 1,
            label TEXT,
            kind TEXT NOT NULL DEFAULT 'custom',
            added_at TEXT NOT NULL,
            last_seen_at TEXT
        );
        CREATE TABLE agent_mapping (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            agent_id TEXT NOT NULL,
            source_model TEXT NOT NULL,
            target_model TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX agent_mapping_agent_id_source_model
            ON agent_mapping (agent_id, source_model);
        CREATE TABLE agent_state (
            agent_id TEXT PRIMARY KEY,
            dns_enabled INTEGER NOT NULL DEFAULT 0,
            cert_trusted INTEGER NOT NULL DEFAULT 0,
            setup_completed INTEGER NOT NULL DEFAULT 0,
            last_started_at TEXT,
            last_error TEXT
        );
        CREATE TABLE bypass_pattern (pattern TEXT PRIMARY KEY, created_at TEXT NOT NULL)
        """,
    )


def _003_resilience_and_usage_indexes(db: SqliteDatabase) -> None:
    _run(
        db,
        """
        CREATE TABLE resilience_setting (key TEXT PRIMARY KEY, value TEXT);
        CREATE INDEX call_log_model ON call_log (model);
        CREATE INDEX call_log_provider ON call_log (provider)
        """,
    )


def _004_agent_effort_and_route_all(db: SqliteDatabase) -> None:
    # A mapping may carry a reasoning-effort override; an agent may route every chat call.
    _run(
        db,
        """
        ALTER TABLE agent_mapping ADD COLUMN effort TEXT;
        ALTER TABLE agent_state ADD COLUMN route_all INTEGER NOT NULL DEFAULT 0
        """,
    )


def _005_connection_responses_capability(db: SqliteDatabase) -> None:
    # Whether an OpenAI connection serves /responses (Responses calls then pass through);
    # OpenAI's own API does, so existing connections to it get the capability.
    _run(
        db,
        """
        ALTER TABLE provider_connection
            ADD COLUMN supports_responses INTEGER NOT NULL DEFAULT 0;
        UPDATE provider_connection SET supports_responses = 1
            WHERE provider = 'openai' AND url LIKE 'https://api.openai.com/%'
        """,
    )


def _006_detected_models(db: SqliteDatabase) -> None:
    # The models each agent was seen asking for, so the user maps what the agent really sends.
    _run(
        db,
        """
        CREATE TABLE detected_model (
            agent_id TEXT NOT NULL,
            model TEXT NOT NULL,
            count INTEGER NOT NULL DEFAULT 0,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            PRIMARY KEY (agent_id, model)
        )
        """,
    )


MIGRATIONS: list[Migration] = [
    _001_router_core,
    _002_inspector_and_bridge,
    _003_resilience_and_usage_indexes,
    _004_agent_effort_and_route_all,
    _005_connection_responses_capability,
    _006_detected_models,
]


def current_version(db: SqliteDatabase) -> int:
    execute(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = execute(db, "SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def apply(db: SqliteDatabase, migrations: list[Migration] | None = None) -> int:
    """Run every migration newer than the DB's version, each in its own IMMEDIATE transaction
    (SQLite DDL is transactional, so a failed step leaves the previous version intact, and a
    second process opening the same file waits instead of racing). Returns the resulting
    version; running it again is a no-op."""
    steps = MIGRATIONS if migrations is None else migrations
    while True:
        with db.atomic(lock_type="IMMEDIATE"):
            version = current_version(db)
            if version > len(MIGRATIONS):
                raise SchemaTooNew(
                    f"database schema version {version} is newer than this llmtap"
                    f" ({len(MIGRATIONS)})"
                )
            if version >= len(steps):
                return version
            steps[version](db)
            execute(db, "INSERT INTO schema_version (version) VALUES (?)", (version + 1,))
