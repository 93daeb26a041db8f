"""The Inspector: live records, sessions, annotations."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from router.errors import NotFound
from router.store import sessions as store_sessions
from router.store.writer import SessionRecordWriter
from router.traffic.buffer import LiveBuffer
from router.traffic.record import InterceptedRequest
from router.traffic.service import Inspector
from tests.router.traffic.factory import make_record


class Sink:
    """Collects session upserts the way SessionRecordWriter would, final state per id."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str]] = []

    def __call__(self, session_id: str, record_id: str, data: str) -> None:
        self.items.append((session_id, record_id, data))

    def final(self, session_id: str) -> dict[str, InterceptedRequest]:
        out: dict[str, InterceptedRequest] = {}
        for sid, rid, data in self.items:
            if sid == session_id:
                out[rid] = InterceptedRequest.model_validate_json(data)
        return out


def stored_inspector(writer: SessionRecordWriter, size: int) -> Inspector:
    """An Inspector whose sessions ``writer`` stores, wired as the running process wires it."""
    return Inspector(LiveBuffer(size), lambda s, r, d: writer.submit((s, r, d)))


def test_add_then_update_is_one_record_with_two_events(sqlite_db: Path) -> None:
    inspector = Inspector(LiveBuffer(10), Sink())
    events: list[tuple[str, str | None]] = []
    inspector.subscribe(lambda ev, rec: events.append((ev, rec.id if rec else None)))
    rec = make_record(status="in-flight", response_body=None)
    inspector.add(rec)
    inspector.update(rec.model_copy(update={"status": 200, "response_body": "{}"}))
    assert events == [("new", rec.id), ("update", rec.id)]
    assert len(inspector.list()) == 1
    stored = inspector.get(rec.id)
    assert stored is not None and stored.status == 200


def test_inspector_fields_survive_a_capture_update(sqlite_db: Path) -> None:
    inspector = Inspector(LiveBuffer(10), Sink())
    rec = make_record(status="in-flight")
    inspector.add(rec)
    inspector.expect_note(rec.id, "replay of x")
    inspector.annotate(rec.id, "look at this")
    final = inspector.update(rec.model_copy(update={"status": 200}))
    assert final.annotation == "look at this"
    assert final.note == "replay of x"
    # the note is consumed by the final state
    again = inspector.update(make_record(id="other-id"))
    assert again.note is None


def test_session_records_final_state_of_a_call_in_flight_when_it_started(sqlite_db: Path) -> None:
    sink = Sink()
    inspector = Inspector(LiveBuffer(10), sink)
    before = make_record(status="in-flight", response_body=None)
    inspector.add(before)
    session = inspector.start_session("s1", "all")
    inspector.update(before.model_copy(update={"status": 200, "response_body": '{"done":1}'}))
    during = inspector.add(make_record(1))
    final = sink.final(session.id)
    assert set(final) == {before.id, during.id}
    assert final[before.id].status == 200
    assert json.loads(final[before.id].response_body or "") == {"done": 1}
    assert all(r.session_id == session.id for r in final.values())
    assert inspector.get(during.id) is not None
    assert inspector.get(during.id).session_id == session.id  # type: ignore[union-attr]

    inspector.stop_session(session.id)
    inspector.add(make_record(2))
    assert len(sink.final(session.id)) == 2
    assert store_sessions.get(session.id).ended_at is not None


def test_session_profile_filters_what_it_records(sqlite_db: Path) -> None:
    sink = Sink()
    inspector = Inspector(LiveBuffer(10), sink)
    session = inspector.start_session(None, "llm")
    llm = inspector.add(make_record(0))
    inspector.add(make_record(1, detected_kind="app", host="example.com"))
    assert set(sink.final(session.id)) == {llm.id}


def test_update_of_an_evicted_record_still_reaches_the_session(sqlite_db: Path) -> None:
    sink = Sink()
    inspector = Inspector(LiveBuffer(2), sink)
    session = inspector.start_session()
    old = inspector.add(make_record(0, status="in-flight"))
    for n in range(1, 4):
        inspector.add(make_record(n))
    assert inspector.get(old.id) is None
    inspector.update(old.model_copy(update={"status": 201}))
    assert inspector.get(old.id) is None  # not re-added: the timeline must not jump
    assert sink.final(session.id)[old.id].status == 201


def test_sessions_are_persisted_and_closed_at_shutdown(sqlite_db: Path) -> None:
    with contextlib.closing(SessionRecordWriter(max_delay=0.0)) as writer:
        inspector = stored_inspector(writer, 10)
        session = inspector.start_session("kept")
        rec = inspector.add(make_record(0))
        assert writer.flush(10)
        # a second Inspector on the same store (a restart) finds the open session
        reopened = stored_inspector(writer, 10)
        assert [s.id for s in reopened.active_sessions()] == [session.id]
        assert reopened.close() == 1
        assert reopened.active_sessions() == []
    stored = store_sessions.get(session.id)
    assert stored.ended_at is not None and stored.request_count == 1
    [data] = store_sessions.list_records(session.id)
    assert json.loads(data)["id"] == rec.id


def test_annotation_updates_live_record_and_every_session_copy(sqlite_db: Path) -> None:
    with contextlib.closing(SessionRecordWriter(max_delay=0.0)) as writer:
        inspector = stored_inspector(writer, 1)
        first = inspector.start_session("a")
        rec = inspector.add(make_record(0))
        inspector.stop_session(first.id)
        second = inspector.start_session("b")
        inspector.update(rec)
        inspector.stop_session(second.id)
        inspector.add(make_record(1))  # evicts rec from the ring of one
        assert writer.flush(10)
        annotated = inspector.annotate(rec.id, "why this prompt?")
        assert annotated.annotation == "why this prompt?"
        assert writer.flush(10)
        for session in (first, second):
            [data] = store_sessions.list_records(session.id)
            assert json.loads(data)["annotation"] == "why this prompt?"
        found = inspector.find(rec.id)
        assert found is not None and found.annotation == "why this prompt?"
        with pytest.raises(NotFound):
            inspector.annotate("no-such-id", "x")


def test_twenty_thousand_records_keep_the_buffer_bounded(sqlite_db: Path) -> None:
    inspector = Inspector(LiveBuffer(1000), None)
    for n in range(20_000):
        rec = inspector.add(make_record(n, status="in-flight"))
        if n % 10 == 0:
            inspector.update(rec.model_copy(update={"status": 200}))
    assert len(inspector.buffer) == 1000
    assert len(inspector.list()) == 1000
