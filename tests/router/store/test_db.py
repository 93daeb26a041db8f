import stat
from pathlib import Path

from router.store import config, keys, providers, tables
from router.store.db import close_database, database, execute, open_database
from router.store.records import ProviderConnectionCreate


def test_pragmas_are_on(db_path: Path) -> None:
    assert execute(database, "PRAGMA journal_mode").fetchone()[0] == "wal"
    assert execute(database, "PRAGMA foreign_keys").fetchone()[0] == 1
    assert execute(database, "PRAGMA busy_timeout").fetchone()[0] == 5000
    assert execute(database, "PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_data_dir_and_file_are_private(db_path: Path) -> None:
    assert stat.S_IMODE(db_path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600


def test_models_match_migrated_schema(db_path: Path) -> None:
    for model in tables.ALL_TABLES:
        name = model._meta.table_name
        columns = {row[1] for row in execute(database, f"PRAGMA table_info({name})")}
        assert columns, f"table {name} missing"
        expected = {f.column_name for f in model._meta.sorted_fields}
        assert expected == columns, name


def test_state_survives_restart(db_path: Path) -> None:
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

    open_database(db_path)
    assert providers.get(conn.id).api_key == "k" * 20
    assert config.get_state("rr:my-combo") == 3
    assert config.get_state("deck:my-combo") == ["b", "a"]
    assert [a.target for a in config.list_aliases()] == ["openai/gpt-4o-mini"]
    verified = keys.verify(full)
    assert verified is not None and verified.id == api_key.id


def test_full_key_never_in_db_bytes(db_path: Path) -> None:
    _, full = keys.create("secret-holder")
    close_database()  # checkpoints the WAL into the main file
    blob = b"".join(p.read_bytes() for p in db_path.parent.iterdir() if p.is_file())
    assert full.encode() not in blob
    assert full[-4:].encode() in blob  # the preview is there, so the bytes were really read
    open_database(db_path)
