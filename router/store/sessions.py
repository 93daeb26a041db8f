"""Inspector recording sessions and the final state of every record they captured."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from peewee import JOIN, fn

from router.errors import BadRequest, FieldError, NotFound
from router.store.db import database, execute, new_id, upsert_rows, utcnow
from router.store.records import Session
from router.store.tables import SessionRecordRow, SessionRow

PROFILES = ("llm", "custom", "all")
ACTIONS = ("stop", "rename")


def _record(row: SessionRow, request_count: int | None = None) -> Session:
    if request_count is None:
        request_count = int(getattr(row, "request_count", 0) or 0)
    return Session(
        id=row.id,
        name=row.name,
        profile=row.profile,  # checked against PROFILES on write
        started_at=row.started_at,
        ended_at=row.ended_at,
        request_count=request_count,
    )


def _counted() -> list[Session]:
    query = (
        SessionRow.select(SessionRow, fn.COUNT(SessionRecordRow.id).alias("request_count"))
        .join(SessionRecordRow, JOIN.LEFT_OUTER)
        .group_by(SessionRow.id)
        .order_by(SessionRow.started_at.desc())
    )
    return [_record(r) for r in query]


def _get_row(session_id: str) -> SessionRow:
    return SessionRow.found(SessionRow.id == session_id, f"session '{session_id}'")


def _count(session_id: str) -> int:
    return int(SessionRecordRow.select().where(SessionRecordRow.session == session_id).count())


def create(
    name: str | None = None, profile: str | None = None, at: datetime | None = None
) -> Session:
    if profile is not None and profile not in PROFILES:
        raise BadRequest(
            "invalid session", [FieldError("profile", f"one of: {', '.join(PROFILES)}")]
        )
    row = SessionRow.create(
        id=new_id(), name=(name or "").strip() or None, profile=profile, started_at=at or utcnow()
    )
    return _record(row, 0)


def list_all() -> list[Session]:
    """Newest first, each with its record count."""
    return _counted()


def active() -> list[Session]:
    return [s for s in _counted() if s.ended_at is None]


def get(session_id: str) -> Session:
    row = _get_row(session_id)
    return _record(row, _count(session_id))


def update(
    session_id: str, action: str, name: str | None = None, at: datetime | None = None
) -> Session:
    """``stop`` sets ``ended_at`` (once; stopping again keeps the first time); ``rename``."""
    if action not in ACTIONS:
        raise BadRequest("invalid action", [FieldError("action", f"one of: {', '.join(ACTIONS)}")])
    if action == "rename" and not (name and name.strip()):
        raise BadRequest("invalid rename", [FieldError("name", "must not be empty")])
    # On SQLite every transaction begins IMMEDIATE (db.py): a read-then-write transaction in
    # WAL mode would otherwise fail at once with "database is locked" when the session
    # writer thread committed in between.
    with database.atomic():
        row = _get_row(session_id)
        if action == "stop":
            if row.ended_at is None:
                row.ended_at = at or utcnow()
        elif name:
            row.name = name.strip()
        row.save()
    return get(session_id)


def delete(session_id: str) -> None:
    """Deletes the session and (ON DELETE CASCADE) every record it held."""
    if not SessionRow.delete().where(SessionRow.id == session_id).execute():
        raise NotFound(f"session '{session_id}' not found")


def close_all_active(at: datetime | None = None) -> int:
    """At shutdown: give every still-open session an ``ended_at``; returns how many."""
    ended = at or utcnow()
    return int(SessionRow.update(ended_at=ended).where(SessionRow.ended_at.is_null()).execute())


def upsert_record(session_id: str, record_id: str, record_json: str) -> None:
    """Store a record's latest state; its position stays where it was first seen."""
    _get_row(session_id)
    upsert_records([(session_id, record_id, record_json)])


def upsert_records(items: Iterable[tuple[str, str, str]]) -> int:
    """Batch form for a background writer: items for sessions that no longer exist are
    skipped (a session may be deleted while its last updates are queued). Returns how many
    were written."""
    batch = list(items)
    if not batch:
        return 0
    with database.atomic():  # see update()
        wanted = {session_id for session_id, _, _ in batch}
        existing = {
            r.id for r in SessionRow.select(SessionRow.id).where(SessionRow.id.in_(list(wanted)))
        }
        rows = [item for item in batch if item[0] in existing]
        upsert_rows(
            "session_record", ["session_id", "record_id", "data"], ["session_id", "record_id"], rows
        )
    return len(rows)


def list_records(session_id: str) -> list[str]:
    """The JSON text of each record, in first-seen order."""
    _get_row(session_id)
    query = (
        SessionRecordRow.select(SessionRecordRow.data)
        .where(SessionRecordRow.session == session_id)
        .order_by(SessionRecordRow.id)
    )
    return [r.data for r in query]


def record_copies(record_id: str) -> list[tuple[str, str]]:
    """``(session_id, record_json)`` of every session that holds this record, oldest first
    (annotations and lookups of records no longer in the live buffer)."""
    cursor = execute(
        database,
        "SELECT session_id, data FROM session_record WHERE record_id = ? ORDER BY id",
        (record_id,),
    )
    return [(str(session_id), str(data)) for session_id, data in cursor.fetchall()]
