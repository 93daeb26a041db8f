"""The Inspector: the one entry point every capture path records through (live buffer,
recording sessions, annotations). Router /v1 calls become records in router/traffic/calls.py."""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from router.errors import NotFound
from router.store import sessions as store_sessions
from router.store.records import Session
from router.traffic.buffer import LiveBuffer, Subscriber
from router.traffic.masking import (
    mask_text,
    masked_copy,
)
from router.traffic.record import (
    InterceptedRequest,
    RecordFilter,
    UpstreamRequest,
)

log = logging.getLogger(__name__)

# (session_id, record_id, record_json): SessionRecordWriter.submit takes it as one tuple.
SessionSink = Callable[[str, str, str], None]

# Fields set on a record by the inspector itself (not by the capture path): a later update
# from the capture path, which knows nothing of them, must not erase them.
_STICKY = ("annotation", "note", "session_id", "upstream_request")
_MAX_PENDING_UPSTREAM = 4096  # diverted calls' upstream requests waiting for their record


class Inspector:
    """Live records plus recording sessions.

    ``add``/``update`` go through the :class:`LiveBuffer` (which masks and caps every record
    before anyone sees it); the inspector subscribes to its own buffer first, so every
    ``new``/``update`` event - including the update of a record already evicted from the
    ring - is upserted into each active session whose profile matches, in its masked state.
    Only the final state survives per record id (the store upserts), so a session that
    started while a call was in flight still ends up with that call's final state.
    """

    def __init__(self, buffer: LiveBuffer, session_sink: SessionSink | None = None) -> None:
        self.buffer = buffer
        self._sink = session_sink
        self._lock = threading.Lock()
        self._active: dict[str, Session] = {}
        self._notes: dict[str, str] = {}
        self._upstream: dict[str, UpstreamRequest] = {}
        self._pending: builtins.list[Callable[[], None]] = []
        buffer.subscribe(self._on_event, wants=self.recording)
        if session_sink is not None:
            # A session left open by a crash keeps recording (it was never stopped).
            for session in store_sessions.active():
                self._active[session.id] = session

    # ------------------------------------------------------------------ records

    def add(self, record: InterceptedRequest) -> InterceptedRequest:
        """Publish a new (usually in-flight) record; notifies ``new``. Returns it masked."""
        return self.buffer.add(self._stamp(record, self.buffer.peek(record.id)))

    def update(self, record: InterceptedRequest) -> InterceptedRequest:
        """Replace the record with the same id in place; notifies ``update``. Fields the
        inspector set (annotation, note, session) are kept. A record already evicted from
        the ring is not re-added, but sessions and the WebSocket still get its final state."""
        stored, _present = self.buffer.replace(self._stamp(record, self.buffer.peek(record.id)))
        if record.status != "in-flight":
            with self._lock:
                self._notes.pop(record.id, None)
        return stored

    def upsert(self, record: InterceptedRequest) -> InterceptedRequest:
        """``add`` for an unknown id, ``update`` otherwise (the ingest endpoint)."""
        if self.buffer.peek(record.id) is None:
            return self.add(record)
        return self.update(record)

    def add_pending(self, publish: Callable[[], None]) -> None:
        """Run ``publish`` before every read of the live records: a source that holds back
        records while nobody watches (the router's in-flight records) publishes what is due,
        so a reader sees what a watcher would have."""
        self._pending.append(publish)

    def publish_pending(self) -> None:
        """Have every source publish what it holds back (see :meth:`add_pending`); the reads
        below do this themselves, a caller about to read from another thread does it first."""
        for publish in self._pending:
            try:
                publish()
            except Exception:  # a read must not fail because a record could not be built
                log.exception("publishing held-back records failed")

    def get(self, record_id: str) -> InterceptedRequest | None:
        self.publish_pending()
        return self.buffer.get(record_id)

    def list(self, flt: RecordFilter | None = None) -> list[InterceptedRequest]:
        """Live records matching ``flt``, newest first."""
        self.publish_pending()
        return self.buffer.list(flt)

    def iter_records(self, flt: RecordFilter | None = None) -> Iterator[InterceptedRequest]:
        """Live records matching ``flt``, newest first, made whole one at a time (exports)."""
        self.publish_pending()
        return self.buffer.iter_records(flt)

    def clear(self) -> None:
        self.buffer.clear()

    def subscribe(
        self, callback: Subscriber, *, wants: Callable[[], bool] | None = None
    ) -> Callable[[], None]:
        return self.buffer.subscribe(callback, wants=wants)

    def watched(self) -> bool:
        """Whether anyone (a WebSocket client, a recording session, another subscriber)
        would see a ``new``/``update`` event now (:meth:`LiveBuffer.watched`)."""
        return self.buffer.watched()

    def expect_note(self, record_id: str, note: str) -> None:
        """Attach ``note`` to the record with this id when it arrives (a replay links its
        original this way before the router has created the record)."""
        with self._lock:
            self._notes[record_id] = note

    def attach_upstream(self, record_id: str, upstream: UpstreamRequest) -> None:
        """Add the (masked) request the router sent upstream to a record the capture path
        owns (a diverted call): at once when its final state is already in, else with its
        next update."""
        live = self.buffer.peek(record_id)
        if live is not None and live.status != "in-flight":
            full = self.buffer.get(record_id)
            if full is not None and full.masked:
                self.buffer.update(masked_copy(full, {"upstream_request": upstream}))
                return
        with self._lock:
            self._upstream[record_id] = upstream
            while len(self._upstream) > _MAX_PENDING_UPSTREAM:
                self._upstream.pop(next(iter(self._upstream)))

    def forget_note(self, record_id: str) -> None:
        with self._lock:
            self._notes.pop(record_id, None)

    def annotate(self, record_id: str, text: str | None) -> InterceptedRequest:
        """Set (or clear, with None/"") the annotation of a record, live and in every session
        that holds it. Raises NotFound when neither has it. Call after the session writer
        is flushed, or a queued older copy could land after the annotated one."""
        annotation = text or None
        found: InterceptedRequest | None = None
        for session_id, data in store_sessions.record_copies(record_id):
            copy = InterceptedRequest.model_validate_json(data).model_copy(
                update={"annotation": annotation}
            )
            found = copy
            self._submit(session_id, copy)
        live = self.get(record_id)
        if live is not None:
            annotated = live.model_copy(update={"annotation": annotation})
            self.buffer.update(annotated)
            return self.buffer.get(record_id) or annotated
        if found is None:
            raise NotFound(f"request '{record_id}' not found")
        return found

    def find(self, record_id: str) -> InterceptedRequest | None:
        """The live record, else the newest session copy of it."""
        live = self.get(record_id)
        if live is not None:
            return live
        copies = store_sessions.record_copies(record_id)
        return InterceptedRequest.model_validate_json(copies[-1][1]) if copies else None

    # ------------------------------------------------------------------ sessions

    def start_session(self, name: str | None = None, profile: str | None = None) -> Session:
        session = store_sessions.create(name, profile)
        with self._lock:
            self._active[session.id] = session
        return session

    def stop_session(self, session_id: str) -> Session:
        with self._lock:
            self._active.pop(session_id, None)
        return store_sessions.update(session_id, "stop")

    def rename_session(self, session_id: str, name: str) -> Session:
        session = store_sessions.update(session_id, "rename", name)
        with self._lock:
            if session_id in self._active:
                self._active[session_id] = session
        return session

    def delete_session(self, session_id: str) -> None:
        with self._lock:
            self._active.pop(session_id, None)
        store_sessions.delete(session_id)

    def recording(self) -> bool:
        """Whether any session is recording (read on every router call: no lock, one dict)."""
        return bool(self._active)

    def active_sessions(self) -> builtins.list[Session]:
        with self._lock:
            return list(self._active.values())

    def close(self, *, end_sessions: bool = True) -> int:
        """At shutdown: end every active session (``ended_at`` = now); returns how many.
        ``end_sessions=False`` (a team gateway): the sessions belong to the shared store, where
        the other instances go on recording into them; they end when someone stops them."""
        with self._lock:
            self._active.clear()
        return store_sessions.close_all_active() if end_sessions else 0

    # ------------------------------------------------------------------ internals

    def _stamp(
        self, record: InterceptedRequest, previous: InterceptedRequest | None
    ) -> InterceptedRequest:
        update: dict[str, Any] = {}
        if previous is not None:
            for name in _STICKY:
                if getattr(record, name) is None and getattr(previous, name) is not None:
                    update[name] = getattr(previous, name)
        with self._lock:
            note = self._notes.get(record.id)
            upstream = self._upstream.pop(record.id, None) if self._upstream else None
            newest = next(reversed(self._active.values()), None) if self._active else None
        if note is not None and record.note is None:
            update["note"] = note
        if upstream is not None and record.upstream_request is None:
            update["upstream_request"] = upstream
        if record.session_id is None and "session_id" not in update and newest is not None:
            update["session_id"] = newest.id
        if not update:
            return record
        if record.masked:  # keep the provenance: mask only what is added here
            for name in ("note", "annotation"):
                if isinstance(update.get(name), str):
                    update[name] = mask_text(update[name])
            return masked_copy(record, update)
        return record.model_copy(update=update)

    def _on_event(self, event: str, record: InterceptedRequest | None) -> None:
        if record is None or self._sink is None:
            return
        with self._lock:
            targets = [s for s in self._active.values() if _profile_matches(s, record)]
        for session in targets:
            self._submit(session.id, record)

    def _submit(self, session_id: str, record: InterceptedRequest) -> None:
        if self._sink is None:
            return
        copy = record.model_copy(update={"session_id": session_id})
        self._sink(session_id, record.id, copy.model_dump_json(by_alias=True))


def _profile_matches(session: Session, record: InterceptedRequest) -> bool:
    profile = session.profile or "all"
    return RecordFilter(profile=profile).matches(record)
