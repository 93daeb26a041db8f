import stat
from pathlib import Path

import pytest

from router.errors import BadRequest
from router.store import config, keys, providers, tables
from router.store.db import (
    close_database,
    database,
    engine,
    engine_of,
    execute,
    open_database,
    redact_url,
)
from router.store.records import ProviderConnectionCreate
from tests.fakes.postgres import PostgresCluster

from .conftest import DbTarget


def test_pragmas_are_on(sqlite_db: Path) -> None:
    assert execute(database, "PRAGMA journal_mode").fetchone()[0] == "wal"
    assert execute(database, "PRAGMA foreign_keys").fetchone()[0] == 1
    assert execute(database, "PRAGMA busy_timeout").fetchone()[0] == 5000
    assert execute(database, "PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_data_dir_and_file_are_private(sqlite_db: Path) -> None:
    assert stat.S_IMODE(sqlite_db.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(sqlite_db.stat().st_mode) == 0o600


def test_engine_follows_the_url(db: DbTarget) -> None:
    assert engine() == ("sqlite" if isinstance(db, Path) else "postgres")


def test_sqlite_url_opens_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "x" / "llmtap.db"
    open_database(f"sqlite:///{path}")
    try:
        config.set_alias("a", "b")
        assert path.exists() and engine() == "sqlite"
    finally:
        close_database()
    open_database(path)
    try:
        assert [a.target for a in config.list_aliases()] == ["b"]
    finally:
        close_database()


@pytest.mark.parametrize("url", ["mysql://x/y", "http://x", "", "postgresql://host/"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(BadRequest) as info:
        if engine_of(url) == "postgres":
            open_database(url)
    assert info.value.details[0].field == "databaseUrl"


def test_passwords_are_redacted() -> None:
    assert redact_url("postgresql://u:s3cret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_models_match_migrated_schema(db: DbTarget) -> None:
    db_obj = database.obj
    for model in tables.ALL_TABLES:
        name = model._meta.table_name
        columns = {c.name for c in db_obj.get_columns(name)}
        assert columns, f"table {name} missing"
        expected = {f.column_name for f in model._meta.sorted_fields}
        assert expected == columns, name


def test_state_survives_restart(db: DbTarget) -> None:
    conn = providers.create(
        ProviderConnectionCreate(
            provider="openai", url="https://api.openai.com/v1", apiKey="k" * 20
        )
    )
    config.set_state("rr:my-combo", 3)
    config.set_state("deck:my-combo", ["b", "a"])
    config.set_alias("fast", "openai/gpt-4o-mini")
    api_key, full = keys.create("ci")
    close_database()

    open_database(db)
    assert providers.get(conn.id).api_key == "k" * 20
    assert config.get_state("rr:my-combo") == 3
    assert config.get_state("deck:my-combo") == ["b", "a"]
    assert [a.target for a in config.list_aliases()] == ["openai/gpt-4o-mini"]
    verified = keys.verify(full)
    assert verified is not None and verified.id == api_key.id


def test_full_key_never_in_db_bytes(sqlite_db: Path) -> None:
    _, full = keys.create("secret-holder")
    close_database()  # checkpoints the WAL into the main file
    blob = b"".join(p.read_bytes() for p in sqlite_db.parent.iterdir() if p.is_file())
    assert full.encode() not in blob
    assert full[-4:].encode() in blob  # the preview is there, so the bytes were really read
    open_database(sqlite_db)


def test_postgres_connection_survives_a_server_restart(
    postgres_cluster: PostgresCluster, postgres_url: str
) -> None:
    open_database(postgres_url)
    try:
        config.set_alias("a", "b")
        postgres_cluster.restart()  # the connection this thread holds is now dead
        assert [x.target for x in config.list_aliases()] == ["b"]
        config.set_alias("c", "d")  # and writes work again too
        assert len(config.list_aliases()) == 2
    finally:
        close_database()
