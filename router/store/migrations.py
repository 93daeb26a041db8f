"""Ordered schema migrations and the ``schema_version`` table that records how far a DB got.

Each migration is plain SQL (not ``create_tables`` on today's models), so an old database is
upgraded step by step to exactly the schema a new one gets. Append only; never edit a
migration that has shipped.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from typing import Any

from router.store.sql import execute

Migration = Callable[[Any], None]


class SchemaTooNew(RuntimeError):
    """The database was written by a newer llmtap; refusing to guess at its schema."""


# The types that differ between the engines, as tokens in the migrations' SQL. On SQLite they
# render to exactly the DDL that shipped before PostgreSQL was supported, so an existing
# database and a new one agree; on PostgreSQL each gets its native type (a peewee
# BooleanField binds a real boolean there, and REAL would be single precision).
DIALECTS: dict[str, dict[str, str]] = {
    "sqlite": {
        "bool": "INTEGER",
        "true": "1",
        "false": "0",
        "real": "REAL",
        "serial_pk": "INTEGER PRIMARY KEY AUTOINCREMENT",
    },
    "postgres": {
        "bool": "BOOLEAN",
        "true": "TRUE",
        "false": "FALSE",
        "real": "DOUBLE PRECISION",
        "serial_pk": "BIGSERIAL PRIMARY KEY",
    },
}


def dialect(db: Any) -> dict[str, str]:
    return DIALECTS["sqlite" if db.param == "?" else "postgres"]


def _run(db: Any, script: str) -> None:
    for statement in script.format(**dialect(db)).split(";"):
        if statement.strip():
            execute(db, statement)


def _001_router_core(db: Any) -> None:
    _run(
        db,
        """
        CREATE TABLE provider_connection (
            id TEXT PRIMARY KEY,
            provider TEXT NOT NULL,
            name TEXT NOT NULL UNIQUE,
            url TEXT NOT NULL,
            api_key TEXT,
            is_active {bool} NOT NULL DEFAULT {true},
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
            is_active {bool} NOT NULL DEFAULT {true},
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
            usage_estimated {bool} NOT NULL DEFAULT {false},
            cost_usd {real} NOT NULL DEFAULT 0,
            latency_ms {real},
            ttft_ms {real},
            source_format TEXT,
            target_format TEXT,
            api_key_id TEXT,
            agent TEXT,
            streamed {bool} NOT NULL DEFAULT {false},
            dropped_fields TEXT NOT NULL DEFAULT '[]',
            error TEXT
        );
        CREATE INDEX call_log_timestamp ON call_log (timestamp)
        """,
    )


def _002_inspector_and_bridge(db: Any) -> None:
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
            id {serial_pk},
            session_id TEXT NOT NULL REFERENCES session (id) ON DELETE CASCADE,
            record_id TEXT NOT NULL,
            data TEXT NOT NULL
        );
        CREATE UNIQUE INDEX session_record_session_id_record_id
            ON session_record (session_id, record_id);
        CREATE TABLE custom_host (
            host TEXT PRIMARY KEY,
            enabled {bool} NOT NULL DEFAULT {true},
            label TEXT,
            kind TEXT NOT NULL DEFAULT 'custom',
            added_at TEXT NOT NULL,
            last_seen_at TEXT
        );
        CREATE TABLE agent_mapping (
            id {serial_pk},
            agent_id TEXT NOT NULL,
            source_model TEXT NOT NULL,
            target_model TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX agent_mapping_agent_id_source_model
            ON agent_mapping (agent_id, source_model);
        CREATE TABLE agent_state (
            agent_id TEXT PRIMARY KEY,
            dns_enabled {bool} NOT NULL DEFAULT {false},
            cert_trusted {bool} NOT NULL DEFAULT {false},
            setup_completed {bool} NOT NULL DEFAULT {false},
            last_started_at TEXT,
            last_error TEXT
        );
        CREATE TABLE bypass_pattern (pattern TEXT PRIMARY KEY, created_at TEXT NOT NULL)
        """,
    )


def _003_resilience_and_usage_indexes(db: Any) -> None:
    _run(
        db,
        """
        CREATE TABLE resilience_setting (key TEXT PRIMARY KEY, value TEXT);
        CREATE INDEX call_log_model ON call_log (model);
        CREATE INDEX call_log_provider ON call_log (provider)
        """,
    )


def _004_agent_effort_and_route_all(db: Any) -> None:
    # A mapping may carry a reasoning-effort override; an agent may route every chat call.
    _run(
        db,
        """
        ALTER TABLE agent_mapping ADD COLUMN effort TEXT;
        ALTER TABLE agent_state ADD COLUMN route_all {bool} NOT NULL DEFAULT {false}
        """,
    )


def _005_connection_responses_capability(db: Any) -> None:
    # Whether an OpenAI connection serves /responses (Responses calls then pass through);
    # OpenAI's own API does, so existing connections to it get the capability.
    _run(
        db,
        """
        ALTER TABLE provider_connection
            ADD COLUMN supports_responses {bool} NOT NULL DEFAULT {false};
        UPDATE provider_connection SET supports_responses = {true}
            WHERE provider = 'openai' AND url LIKE 'https://api.openai.com/%'
        """,
    )


def _006_detected_models(db: Any) -> None:
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


def _007_shared_change_counter(db: Any) -> None:
    # Instances sharing one database (a team gateway) learn of configuration changes made
    # elsewhere from this counter (bumped with every change, next to a NOTIFY; store/shared.py).
    _run(
        db,
        """
        CREATE TABLE shared_epoch (name TEXT PRIMARY KEY, n BIGINT NOT NULL DEFAULT 0);
        INSERT INTO shared_epoch (name, n) VALUES ('config', 0)
        """,
    )


def _008_shared_breakers_and_leases(db: Any) -> None:
    # A team gateway's instances share breakers, 429 cooldowns (model '' = the whole
    # connection) and maxConcurrent leases that expire when their instance dies. Times are
    # wall-clock seconds since the epoch.
    _run(
        db,
        """
        CREATE TABLE breaker_state (
            connection_id TEXT PRIMARY KEY,
            open_until {real} NOT NULL DEFAULT 0,
            cooldown_s {real} NOT NULL DEFAULT 0,
            probe_until {real} NOT NULL DEFAULT 0
        );
        CREATE TABLE rate_limit (
            connection_id TEXT NOT NULL,
            model TEXT NOT NULL,
            until_ts {real} NOT NULL,
            PRIMARY KEY (connection_id, model)
        );
        CREATE TABLE connection_lease (
            id TEXT PRIMARY KEY,
            connection_id TEXT NOT NULL,
            instance_id TEXT NOT NULL,
            expires_at {real} NOT NULL
        );
        CREATE INDEX connection_lease_connection ON connection_lease (connection_id)
        """,
    )


def _009_nullable_call_log_cost(db: Any) -> None:
    """A call to a model without a price has cost NULL ("unknown"), not 0. PostgreSQL drops
    the constraint in place; SQLite cannot, so the table is rebuilt from its own stored
    definition with that one constraint removed (same columns in the same order) and its
    indexes recreated as they were. Rows written before keep their cost (0 for those calls)."""
    if db.param != "?":
        execute(db, "ALTER TABLE call_log ALTER COLUMN cost_usd DROP NOT NULL")
        return
    schema = "SELECT sql FROM sqlite_master WHERE tbl_name = 'call_log' AND type = ?"
    (table,) = execute(db, schema, ("table",)).fetchone()
    indexes = [sql for (sql,) in execute(db, schema, ("index",)).fetchall() if sql]
    rebuilt, n = re.subn(r"(\bcost_usd\s+REAL)\s+NOT\s+NULL", r"\1", table, flags=re.I)
    if n != 1:
        raise RuntimeError(f"migration 009: unexpected call_log definition: {table}")
    rebuilt = re.sub(r"^\s*CREATE\s+TABLE\s+\"?call_log\"?", "CREATE TABLE call_log_009", rebuilt)
    execute(db, rebuilt)
    execute(db, "INSERT INTO call_log_009 SELECT * FROM call_log")
    execute(db, "DROP TABLE call_log")
    execute(db, "ALTER TABLE call_log_009 RENAME TO call_log")
    for index in indexes:
        execute(db, index)


MIGRATIONS: list[Migration] = [
    _001_router_core,
    _002_inspector_and_bridge,
    _003_resilience_and_usage_indexes,
    _004_agent_effort_and_route_all,
    _005_connection_responses_capability,
    _006_detected_models,
    _007_shared_change_counter,
    _008_shared_breakers_and_leases,
    _009_nullable_call_log_cost,
]


def current_version(db: Any) -> int:
    execute(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = execute(db, "SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


# Any fixed 64-bit key: instances of llmtap sharing one PostgreSQL database take this
# advisory lock around migrating, so two starting at once migrate once.
MIGRATION_LOCK = zlib.crc32(b"llmtap schema migrations")


def apply(db: Any, migrations: list[Migration] | None = None) -> int:
    """Run every migration newer than the DB's version, each in its own transaction (DDL is
    transactional on both engines, so a failed step leaves the previous version intact).
    Returns the resulting version; running it again is a no-op.

    Two processes starting at once on one database migrate once: on SQLite each step's
    transaction takes the write lock when it begins (BEGIN IMMEDIATE, db.py), so the second
    waits and then finds the step done; on PostgreSQL the whole run holds a session-level
    advisory lock (``pg_advisory_lock``), which the server releases if the process dies."""
    steps = MIGRATIONS if migrations is None else migrations
    postgres = db.param != "?"
    if postgres:
        execute(db, "SELECT pg_advisory_lock(?)", (MIGRATION_LOCK,))
    try:
        while True:
            with db.atomic():
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
    finally:
        if postgres:
            execute(db, "SELECT pg_advisory_unlock(?)", (MIGRATION_LOCK,))
