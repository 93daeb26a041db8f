import json
from datetime import UTC, datetime

import pytest

from router.errors import BadRequest, NotFound
from router.store import sessions
from router.store.db import close_database, open_database

from .conftest import DbTarget, count_rows


def test_lifecycle(db: DbTarget) -> None:
    s = sessions.create("run #1", "llm")
    assert s.active and s.request_count == 0 and s.profile == "llm"
    assert sessions.active() == [s]
    renamed = sessions.update(s.id, "rename", name="run #2")
    assert renamed.name == "run #2"
    at = datetime(2030, 1, 1, tzinfo=UTC)
    stopped = sessions.update(s.id, "stop", at=at)
    assert stopped.ended_at == at and not stopped.active
    again = sessions.update(s.id, "stop")
    assert again.ended_at == at  # the first stop time is kept
    assert sessions.active() == []
    assert [x.id for x in sessions.list_all()] == [s.id]


def test_validation(db: DbTarget) -> None:
    with pytest.raises(BadRequest) as info:
        sessions.create(profile="everything")
    assert info.value.details[0].field == "profile"
    s = sessions.create()
    with pytest.raises(BadRequest) as info:
        sessions.update(s.id, "pause")
    assert info.value.details[0].field == "action"
    with pytest.raises(BadRequest) as info:
        sessions.update(s.id, "rename", name=" ")
    assert info.value.details[0].field == "name"
    for call in (
        lambda: sessions.get("nope"),
        lambda: sessions.update("nope", "stop"),
        lambda: sessions.delete("nope"),
        lambda: sessions.list_records("nope"),
        lambda: sessions.upsert_record("nope", "r", "{}"),
    ):
        with pytest.raises(NotFound):
            call()


def test_records_upsert_in_first_seen_order(db: DbTarget) -> None:
    s = sessions.create()
    sessions.upsert_record(s.id, "a", json.dumps({"id": "a", "status": "in-flight"}))
    sessions.upsert_record(s.id, "b", json.dumps({"id": "b", "status": "in-flight"}))
    sessions.upsert_record(s.id, "a", json.dumps({"id": "a", "status": 200}))
    records = [json.loads(r) for r in sessions.list_records(s.id)]
    assert records == [{"id": "a", "status": 200}, {"id": "b", "status": "in-flight"}]
    assert sessions.get(s.id).request_count == 2
    assert sessions.list_all()[0].request_count == 2


def test_batch_upsert_skips_deleted_sessions(db: DbTarget) -> None:
    s = sessions.create()
    written = sessions.upsert_records([(s.id, "a", "{}"), ("gone", "b", "{}"), (s.id, "a", "[]")])
    assert written == 2
    assert sessions.list_records(s.id) == ["[]"]


def test_delete_cascades(db: DbTarget) -> None:
    s = sessions.create()
    keep = sessions.create()
    sessions.upsert_record(s.id, "a", "{}")
    sessions.upsert_record(keep.id, "a", "{}")
    sessions.delete(s.id)
    assert count_rows("session_record") == 1
    assert sessions.list_records(keep.id) == ["{}"]


def test_close_all_active_and_restart(db: DbTarget) -> None:
    a = sessions.create("a")
    b = sessions.create("b")
    sessions.update(b.id, "stop")
    sessions.upsert_record(a.id, "r1", '{"x":1}')
    at = datetime(2031, 5, 5, tzinfo=UTC)
    assert sessions.close_all_active(at) == 1
    close_database()
    open_database(db)
    assert sessions.get(a.id).ended_at == at
    assert sessions.list_records(a.id) == ['{"x":1}']
    assert sessions.active() == []
