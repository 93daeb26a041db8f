"""The bounded live buffer: eviction, in-place updates, subscribers, truncation, threads."""

from __future__ import annotations

import gc
import json
import weakref
from typing import Any

from router.traffic.buffer import (
    TRUNCATED_SUFFIX,
    LiveBuffer,
    added_since_previous,
    previous_in_thread,
    truncate_body,
)
from router.traffic.record import InterceptedRequest, LlmInfo, RecordFilter
from tests.router.traffic.factory import make_record

SECRET = "sk-proj-" + "S3cr3tV4lu3" * 4


def test_ring_keeps_the_newest_and_lets_evicted_records_go() -> None:
    buffer = LiveBuffer(size=1000)
    first = buffer.add(make_record(0))
    ref = weakref.ref(first)
    first_id = first.id
    del first
    ids = [buffer.add(make_record(n)).id for n in range(1, 20_000)]
    gc.collect()
    assert len(buffer) == 1000
    assert ref() is None  # nothing keeps an evicted record alive
    assert buffer.get(first_id) is None
    newest = buffer.list()
    assert [r.id for r in newest] == ids[::-1][:1000]
    assert buffer.list(limit=3) == newest[:3]


def test_in_flight_then_update_in_place_with_events() -> None:
    buffer = LiveBuffer(size=3)
    events: list[tuple[str, str | None, object]] = []
    unsubscribe = buffer.subscribe(
        lambda kind, rec: events.append(
            (kind, rec.id if rec else None, rec.status if rec else None)
        )
    )
    a = buffer.add(make_record(0, status="in-flight", response_body=None))
    b = buffer.add(make_record(1))
    assert buffer.update(a.model_copy(update={"status": 201}))
    assert buffer.get(a.id) is not None and buffer.get(a.id).status == 201  # type: ignore[union-attr]
    assert [r.id for r in buffer.list()] == [b.id, a.id]  # an update does not move a record
    assert events == [("new", a.id, "in-flight"), ("new", b.id, 200), ("update", a.id, 201)]
    buffer.add(make_record(2))
    buffer.add(make_record(3))  # evicts a
    events.clear()
    # Evicted: not re-added (the ring holds the newest calls), but subscribers still hear the
    # final state so an active recording session can store it.
    assert not buffer.update(a.model_copy(update={"status": 500}))
    assert buffer.get(a.id) is None and len(buffer) == 3
    assert events == [("update", a.id, 500)]
    buffer.clear()
    assert len(buffer) == 0 and events[-1] == ("clear", None, None)
    unsubscribe()
    buffer.add(make_record(4))
    assert events[-1] == ("clear", None, None)


def test_a_failing_subscriber_never_breaks_capture() -> None:
    buffer = LiveBuffer()
    seen: list[str] = []

    def broken(kind: str, rec: InterceptedRequest | None) -> None:
        raise RuntimeError("boom")

    buffer.subscribe(broken)
    buffer.subscribe(lambda kind, rec: seen.append(kind))
    buffer.add(make_record())
    assert seen == ["new"]


def test_everything_held_or_published_is_masked() -> None:
    buffer = LiveBuffer()
    published: list[str] = []
    buffer.subscribe(lambda kind, rec: published.append(rec.model_dump_json() if rec else ""))
    record = make_record(
        request_headers={"authorization": f"Bearer {SECRET}", "content-type": "application/json"},
        request_body=json.dumps({"api_key": SECRET, "messages": [{"content": SECRET}]}),
        llm=LlmInfo(
            conversation={
                "request": [{"role": "user", "blocks": [{"type": "text", "text": SECRET}]}]
            }
        ),
    )
    stored = buffer.add(record)
    assert SECRET not in stored.model_dump_json()
    assert all(SECRET not in p for p in published)
    assert stored.request_headers["authorization"] == "Bearer ***"


def test_bodies_are_truncated_to_max_body_kb() -> None:
    buffer = LiveBuffer(max_body_kb=1)
    record = buffer.add(make_record(request_body="é" * 5000, response_body="short"))
    assert record.body_truncated is True
    assert record.request_body is not None and record.request_body.endswith(TRUNCATED_SUFFIX)
    assert len(record.request_body.encode()) <= 1024
    assert record.response_body == "short"
    untouched = buffer.add(make_record(request_body="x" * 100))
    assert untouched.body_truncated is None
    assert truncate_body(None, 10) == (None, False)
    assert truncate_body("abc", 10) == ("abc", False)
    cut, truncated = truncate_body("€" * 100, 40)
    assert truncated and cut is not None and cut.endswith(TRUNCATED_SUFFIX)
    assert len(cut.encode()) <= 40 and cut.startswith("€")  # never cut inside a character


def test_filters_apply_to_list() -> None:
    buffer = LiveBuffer()
    llm = buffer.add(make_record(0, status=200))
    app = buffer.add(
        make_record(1, detected_kind="app", host="example.com", status=404, agent=None)
    )
    custom = buffer.add(
        make_record(2, source="custom-host", host="llm.corp.example", status="error")
    )
    flight = buffer.add(
        make_record(3, status="in-flight", session_id="s1", context_key="abc123abc123")
    )
    assert [r.id for r in buffer.list(RecordFilter(profile="llm"))] == [
        flight.id,
        custom.id,
        llm.id,
    ]
    assert [r.id for r in buffer.list(RecordFilter(profile="custom"))] == [custom.id]
    assert [r.id for r in buffer.list(RecordFilter(status="4xx"))] == [app.id]
    assert [r.id for r in buffer.list(RecordFilter(status="error"))] == [custom.id]
    assert [r.id for r in buffer.list(RecordFilter(status="2xx"))] == [llm.id]
    assert [r.id for r in buffer.list(RecordFilter(host="EXAMPLE"))] == [custom.id, app.id]
    assert [r.id for r in buffer.list(RecordFilter(session_id="s1"))] == [flight.id]
    assert [r.id for r in buffer.list(RecordFilter(context_key="abc123abc123"))] == [flight.id]
    assert len(buffer.list(RecordFilter(agent="claude-code"))) == 3


# --------------------------------------------------------------------------- threads


def convo_record(
    n: int,
    request: list[dict[str, Any]],
    response: list[dict[str, Any]],
    key: str | None = "k1",
) -> InterceptedRequest:
    return make_record(
        n,
        context_key=key,
        llm=LlmInfo(conversation={"request": request, "response": response, "contextKey": key}),
    )


def turn(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "blocks": [{"type": "text", "text": text}]}


def test_thread_shows_only_what_each_call_added() -> None:
    system, q1, a1, q2, a2 = (
        turn("system", "sys"),
        turn("user", "q1"),
        turn("assistant", "a1"),
        turn("user", "q2"),
        turn("assistant", "a2"),
    )
    first = convo_record(0, [system, q1], [a1])
    # The client echoes the previous answer with thinking attached: still the same turn.
    a1_with_thinking = {
        "role": "assistant",
        "blocks": [{"type": "thinking", "thinking": "hm"}, *a1["blocks"]],
    }
    second = convo_record(1, [system, q1, a1_with_thinking, q2], [a2])
    other = convo_record(2, [turn("system", "other"), q1], [a1], key="k2")
    records = [first, second, other]
    assert previous_in_thread(records, second) is first
    assert previous_in_thread(records, first) is None
    assert previous_in_thread(records, other) is None
    assert added_since_previous(None, first) == [system, q1, a1]
    assert added_since_previous(first, second) == [q2, a2]
    # A history that was rewritten (compaction) shows from where it differs.
    compacted = convo_record(3, [system, turn("user", "summary"), q2], [a2])
    assert added_since_previous(second, compacted) == [turn("user", "summary"), q2, a2]


# --------------------------------------------------------------------------- held bodies


def test_large_bodies_are_held_compressed_and_come_back_whole() -> None:
    prose = " ".join(f"word{n}" for n in range(3000))  # ~25 KB, well above the threshold
    buffer = LiveBuffer(size=10)
    rec = make_record(0, request_body=json.dumps({"prompt": prose}), response_body=prose)
    stored = buffer.add(rec)
    held = buffer._records[stored.id]
    assert held.request_z is not None and held.response_z is not None
    assert held.record.request_body is None and held.record.response_body is None
    assert len(held.request_z) + len(held.response_z) < len(prose)  # both, under one raw
    back = buffer.get(stored.id)
    assert back == stored and back is not None and back.response_body == prose
    assert buffer.list() == [stored] and list(buffer.iter_records()) == [stored]
    assert buffer.peek(stored.id) is held.record  # the cheap view, without the bodies


def test_configure_takes_effect_at_once() -> None:
    buffer = LiveBuffer(size=5, max_body_kb=1024)
    ids = [buffer.add(make_record(n)).id for n in range(5)]
    buffer.configure(size=2)
    assert [r.id for r in buffer.list()] == ids[:2:-1][:2]  # the newest two stay
    buffer.configure(max_body_kb=1)
    cut = buffer.add(make_record(9, response_body="a b " * 1500))
    assert cut.body_truncated and cut.response_body is not None
    assert len(cut.response_body.encode()) <= 1024
    assert len(buffer) == 2


def test_a_record_is_masked_once() -> None:
    """What the buffer stores carries the masked provenance; passing it in again (or a record
    built masked by the router) is not masked a second time, while a field change is."""
    buffer = LiveBuffer(size=5)
    raw = make_record(0, request_headers={"authorization": f"Bearer {SECRET}"})
    assert not raw.masked
    stored = buffer.add(raw)
    assert stored.masked and SECRET not in stored.model_dump_json()
    assert buffer.add(stored) is stored  # taken as it is: no second pass
    changed = stored.model_copy(update={"note": f"key {SECRET}"})
    assert not changed.masked
    again = buffer.add(changed)
    assert again.masked and SECRET not in (again.note or "")
    assigned = buffer.get(stored.id)
    assert assigned is not None
    assigned.error = SECRET
    assert not assigned.masked  # an assignment clears the provenance too
    # ingest cannot forge it: the private attribute is not an input
    forged = InterceptedRequest.model_validate({**raw.to_wire(), "_masked": True, "masked": True})
    assert not forged.masked
