from pathlib import Path

import pytest

from router.store import migrations, sessions
from router.store.db import close_database, database, execute, open_database


def _tables() -> set[str]:
    rows = execute(database, "SELECT name FROM sqlite_master WHERE type = 'table'")
    return {r[0] for r in rows}


def test_apply_is_idempotent(db_path: Path) -> None:
    version = migrations.current_version(database)
    assert version == len(migrations.MIGRATIONS)
    before = _tables()
    assert migrations.apply(database) == version
    assert _tables() == before
    rows = execute(database, "SELECT COUNT(*) FROM schema_version").fetchone()[0]
    assert rows == version


def test_old_database_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    n = len(migrations.MIGRATIONS)
    open_database_without_migrating(path)
    assert migrations.apply(database, migrations.MIGRATIONS[:2]) == 2
    assert "resilience_setting" not in _tables()
    assert "detected_model" not in _tables()
    execute(
        database,
        "INSERT INTO session (id, name, started_at) VALUES ('s1', 'old', "
        "'2024-01-01T00:00:00.000000+00:00')",
    )
    close_database()

    open_database(path)
    try:
        assert migrations.current_version(database) == n
        assert {"resilience_setting", "detected_model"} <= _tables()
        assert sessions.get("s1").name == "old"  # data from version 2 kept
        columns = {r[1] for r in execute(database, "PRAGMA table_info(agent_mapping)")}
        assert "effort" in columns
        columns = {r[1] for r in execute(database, "PRAGMA table_info(agent_state)")}
        assert "route_all" in columns
    finally:
        close_database()


def test_openai_connections_get_the_responses_capability(tmp_path: Path) -> None:
    open_database_without_migrating(tmp_path / "v4.db")
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
        assert sorted(rows.fetchall()) == [("a", 1), ("b", 0), ("c", 0)]
    finally:
        close_database()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    open_database(path)
    execute(database, "INSERT INTO schema_version (version) VALUES (999)")
    close_database()
    with pytest.raises(migrations.SchemaTooNew):
        open_database(path)
    close_database()


def open_database_without_migrating(path: Path) -> None:
    from router.store.db import PRAGMAS

    database.init(str(path), pragmas=PRAGMAS, check_same_thread=False)
    database.connect(reuse_if_open=True)
