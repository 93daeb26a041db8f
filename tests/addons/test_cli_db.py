"""``llmtap db migrate|status|copy`` as real CLI processes on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from router.store import agents, calllogs, combos, config, keys, migrations, providers, sessions
from router.store.db import close_database, open_database
from router.store.records import CallLog, ComboCreate, ProviderConnectionCreate
from tests.addons.proc import ROOT, llmtap_argv


def llmtap(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMTAP_")}
    return subprocess.run(
        llmtap_argv(*argv), env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def ok_json(*argv: str) -> Any:
    done = llmtap(*argv, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_migrate_and_status_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    data = ["--data-dir", str(tmp_path / "data"), "--database-url", postgres_url]
    latest = len(migrations.MIGRATIONS)
    before = ok_json("db", "status", *data)
    assert before["engine"] == "postgres"
    assert (before["schemaVersion"], before["pending"]) == (0, latest)
    assert ok_json("db", "migrate", *data)["to"] == latest
    after = ok_json("db", "status", *data)
    assert (after["schemaVersion"], after["pending"]) == (latest, 0)
    assert after["rows"]["provider_connection"] == 0
    assert "llmtap@" in after["database"]  # the URL is shown (with any password masked)


def _fill(path: Path) -> dict[str, Any]:
    open_database(path)
    try:
        conn = providers.create(
            ProviderConnectionCreate(
                provider="openai", name="oa", url="https://api.openai.com/v1",
                apiKey="sk-copy-0123456789", models=["gpt-4o"],
            )
        )  # fmt: skip
        combos.create(
            ComboCreate.model_validate(
                {"name": "c", "strategy": "round-robin",
                 "nodes": [{"connectionId": conn.id, "model": "gpt-4o"}]}
            )
        )  # fmt: skip
        _, full_key = keys.create("team")
        config.set_alias("fast", "oa/gpt-4o")
        config.set_settings({"buffer_size": 500})
        agents.replace_mappings("claude-code", [("*", "oa/gpt-4o", "high")])
        session = sessions.create("run")
        sessions.upsert_records([(session.id, "r1", '{"a": 1}'), (session.id, "r2", "{}")])
        calllogs.insert_many(
            CallLog(
                id=f"log-{i}", timestamp=datetime(2025, 1, 1, tzinfo=UTC), path="/v1/x",
                requested_model="m", status=200, streamed=bool(i % 2), cost_usd=0.25,
            )
            for i in range(30)
        )  # fmt: skip
        return {"key": full_key, "session": session.id}
    finally:
        close_database()


def test_copy_sqlite_to_postgres_keeps_everything(tmp_path: Path, postgres_url: str) -> None:
    source = tmp_path / "alone" / "llmtap.db"
    made = _fill(source)
    out = ok_json("db", "copy", "--from", f"sqlite:///{source}", "--to", postgres_url)
    assert out["tables"]["call_log"] == 30 and out["tables"]["session_record"] == 2

    open_database(postgres_url)
    try:
        (conn,) = providers.list_all()
        assert (conn.name, conn.api_key, conn.models) == ("oa", "sk-copy-0123456789", ["gpt-4o"])
        assert combos.get_by_name("c").nodes[0].connection_id == conn.id
        assert keys.verify(made["key"]) is not None
        assert [a.target for a in config.list_aliases()] == ["oa/gpt-4o"]
        assert config.get_settings() == {"buffer_size": 500}
        assert agents.find_mapping("claude-code", "x") is not None
        assert sessions.list_records(made["session"]) == ['{"a": 1}', "{}"]
        assert calllogs.count() == 30
        assert sum(1 for log in calllogs.list_logs(limit=100) if log.streamed) == 15
        # The id sequences moved past the copied ids: new rows do not collide.
        agents.replace_mappings("codex", [("*", "oa/gpt-4o")])
        sessions.upsert_records([(made["session"], "r3", "{}")])
        assert len(sessions.list_records(made["session"])) == 3
    finally:
        close_database()

    again = llmtap("db", "copy", "--from", f"sqlite:///{source}", "--to", postgres_url)
    assert again.returncode == 2 and "already holds data" in again.stderr


def test_copy_refuses_a_missing_source(tmp_path: Path) -> None:
    done = llmtap(
        "db", "copy", "--from", f"sqlite:///{tmp_path / 'none.db'}",
        "--to", f"sqlite:///{tmp_path / 'b.db'}",
    )  # fmt: skip
    assert done.returncode == 2 and "no SQLite database" in done.stderr
