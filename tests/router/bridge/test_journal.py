"""The undo journal: atomic JSON in the data dir, read back by a fresh process."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from router.bridge.journal import HostsEntry, Journal, ProxyEntry


def test_round_trip_and_atomic_files(tmp_path: Path) -> None:
    j = Journal(tmp_path / "data")
    assert j.read().system_proxy is None
    now = datetime(2025, 1, 1, tzinfo=UTC)
    with j.edit() as data:
        data.system_proxy = ProxyEntry(
            platform="linux", host="127.0.0.1", port=8080, guard_minutes=30, applied_at=now,
            guard_until=now + timedelta(minutes=30),
            previous={"gnome": {"org.gnome.system.proxy": {"mode": "'none'"}}},
        )  # fmt: skip
        data.hosts["/etc/hosts"] = HostsEntry(added=["127.0.0.1 a # llmtap"])
    again = Journal(tmp_path / "data").read()
    assert again.system_proxy is not None
    assert again.system_proxy.guard_until == now + timedelta(minutes=30)
    assert again.system_proxy.previous["gnome"]["org.gnome.system.proxy"]["mode"] == "'none'"
    assert again.hosts["/etc/hosts"].added == ["127.0.0.1 a # llmtap"]
    assert json.loads(j.path.read_text())["version"] == 1
    assert [p.name for p in j.path.parent.iterdir()] == ["journal.json"]


def test_failed_edit_writes_nothing(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    try:
        with j.edit() as data:
            data.hosts["x"] = HostsEntry()
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert not j.path.exists()


def test_unreadable_journal_is_kept_aside(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.path.write_text("{not json")
    assert j.read().system_proxy is None
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("journal.json.corrupt-")]
    assert len(aside) == 1 and aside[0].read_text() == "{not json"
