"""The bounded live buffer of records with synchronous subscribers, and conversation threads."""

from __future__ import annotations

import logging
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from router.traffic.masking import mask_record, masked_copy
from router.traffic.record import InterceptedRequest, RecordFilter

log = logging.getLogger(__name__)

EventType = Literal["new", "update", "clear"]
Subscriber = Callable[[EventType, InterceptedRequest | None], None]

TRUNCATED_SUFFIX = "…(truncated)"
# Bodies at least this long are held zlib-compressed (level 1: ~4x on JSON chat bodies for
# tens of microseconds): the ring holds thousands of records, and their bodies are most of it.
_COMPRESS_FROM = 2048


@dataclass(slots=True)
class _Held:
    """One record as the ring holds it: the record with its large bodies taken out, and those
    bodies compressed (UTF-8, zlib)."""

    record: InterceptedRequest
    request_z: bytes | None = None
    response_z: bytes | None = None
    # What the request side looked like before masking (see _request_key): an update of the
    # same call with the same request reuses the masked request side instead of masking again.
    request_key: tuple[Any, ...] | None = None

    @classmethod
    def of(cls, record: InterceptedRequest) -> _Held:
        req, resp = record.request_body, record.response_body
        big_req = req is not None and len(req) >= _COMPRESS_FROM
        big_resp = resp is not None and len(resp) >= _COMPRESS_FROM
        if not (big_req or big_resp):
            return cls(record)
        update: dict[str, Any] = {}
        held = cls(record)
        if big_req:
            assert req is not None
            held.request_z = _pack(req)
            update["request_body"] = None
        if big_resp:
            assert resp is not None
            held.response_z = _pack(resp)
            update["response_body"] = None
        held.record = (
            masked_copy(record, update) if record.masked else record.model_copy(update=update)
        )
        return held

    def full(self) -> InterceptedRequest:
        if self.request_z is None and self.response_z is None:
            return self.record
        update: dict[str, Any] = {}
        if self.request_z is not None:
            update["request_body"] = _unpack(self.request_z)
        if self.response_z is not None:
            update["response_body"] = _unpack(self.response_z)
        return masked_copy(self.record, update)


def _request_key(record: InterceptedRequest) -> tuple[Any, ...]:
    """The unmasked request side, compared cheaply: a capture path rebuilds the record of a
    call at its end from the same request (``hash`` of a str is computed once and cached)."""
    body = record.request_body
    return (
        record.path,
        tuple(record.request_headers.items()),
        None if body is None else (len(body), hash(body)),
    )


def _pack(text: str) -> bytes:
    return zlib.compress(text.encode("utf-8", "surrogatepass"), 1)


def _unpack(data: bytes) -> str:
    return zlib.decompress(data).decode("utf-8", "surrogatepass")


class LiveBuffer:
    """A ring of the newest ``size`` records, keyed by id, oldest evicted first.

    Every record is masked (:func:`mask_record`; a record the router built masked is taken as
    it is) and its bodies cut to ``max_body_kb`` on the way in, so whatever the traffic,
    memory stays bounded and nothing unmasked reaches a subscriber. Only records are held,
    never the flows they came from; large bodies are held compressed. ``size`` and
    ``max_body_kb`` can change while running (:meth:`configure`).

    An :meth:`update` for a record that was already evicted is not re-added (that would evict
    a newer record and make the timeline jump), but subscribers still get the ``update``
    event, so an active recording session stores the call's final state.

    Subscribers are called synchronously, outside the lock, in subscription order; they must
    be cheap (the WebSocket hub serialises once and enqueues). One that raises is logged and
    skipped, never allowed to break capture.
    """

    def __init__(self, size: int = 1000, max_body_kb: int = 1024) -> None:
        if size < 1:
            raise ValueError("buffer size must be at least 1")
        self.size = size
        self.max_body_kb = max_body_kb
        self._records: OrderedDict[str, _Held] = OrderedDict()
        self._subscribers: list[Subscriber] = []
        # Per subscriber, what says whether it wants events right now (None: always).
        self._wants: dict[int, Callable[[], bool] | None] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._records)

    def configure(self, *, size: int | None = None, max_body_kb: int | None = None) -> None:
        """Apply new settings now: a smaller ring evicts its oldest records at once; a new body
        cap applies to records that arrive from now on."""
        with self._lock:
            if size is not None:
                if size < 1:
                    raise ValueError("buffer size must be at least 1")
                self.size = size
                while len(self._records) > self.size:
                    self._records.popitem(last=False)
            if max_body_kb is not None:
                self.max_body_kb = max_body_kb

    def add(self, record: InterceptedRequest) -> InterceptedRequest:
        """Store a new (usually in-flight) record, evicting the oldest; notifies ``new``.
        Adding an id that is already held replaces it and notifies ``update``."""
        stored, key = self._prepare(record)
        held = _Held.of(stored)
        held.request_key = key
        with self._lock:
            existing = stored.id in self._records
            self._records[stored.id] = held
            if not existing:
                while len(self._records) > self.size:
                    self._records.popitem(last=False)
        self._notify("update" if existing else "new", stored)
        return stored

    def update(self, record: InterceptedRequest) -> bool:
        """Replace the record with the same id in place; notifies ``update``. Returns False
        when the id is no longer held (see the class docstring)."""
        return self.replace(record)[1]

    def replace(self, record: InterceptedRequest) -> tuple[InterceptedRequest, bool]:
        """:meth:`update`, returning the record as stored and published (masked, capped) and
        whether the id was still held."""
        stored, key = self._prepare(record)
        held = _Held.of(stored)
        held.request_key = key
        with self._lock:
            present = stored.id in self._records
            if present:
                self._records[stored.id] = held
        self._notify("update", stored)
        return stored, present

    def get(self, record_id: str) -> InterceptedRequest | None:
        held = self._records.get(record_id)
        return held.full() if held is not None else None

    def peek(self, record_id: str) -> InterceptedRequest | None:
        """The held record without its large bodies (cheap: for its other fields)."""
        held = self._records.get(record_id)
        return held.record if held is not None else None

    def list(
        self, flt: RecordFilter | None = None, *, limit: int | None = None
    ) -> list[InterceptedRequest]:
        """Matching records, newest first."""
        with self._lock:
            records = list(reversed(self._records.values()))
        out: list[InterceptedRequest] = []
        for held in records:
            if flt is None or flt.matches(held.record):  # filters never look at bodies
                out.append(held.full())
                if limit is not None and len(out) >= limit:
                    break
        return out

    def iter_records(self, flt: RecordFilter | None = None) -> Iterator[InterceptedRequest]:
        """Matching records, newest first, each made whole only when it is reached (an export
        of thousands of records never holds all their bodies at once)."""
        with self._lock:
            held = list(reversed(self._records.values()))
        for entry in held:
            if flt is None or flt.matches(entry.record):
                yield entry.full()

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
        self._notify("clear", None)

    def subscribe(
        self, callback: Subscriber, *, wants: Callable[[], bool] | None = None
    ) -> Callable[[], None]:
        """Register ``callback(event_type, record_or_None)``; returns the unsubscribe function.
        ``wants``, when given, says whether the subscriber does anything with an event right
        now (a hub with no client does not): :meth:`watched` asks it."""
        with self._lock:
            self._subscribers.append(callback)
            self._wants[id(callback)] = wants

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)
                    if callback not in self._subscribers:
                        self._wants.pop(id(callback), None)

        return unsubscribe

    def watched(self) -> bool:
        """Whether any subscriber would do something with an event now: a producer may skip
        building a state nobody sees (a router call's in-flight record when the call has
        already ended). Records held in the ring are not affected."""
        return any(wants is None or wants() for wants in list(self._wants.values()))

    def truncate_body(self, text: str | None) -> tuple[str | None, bool]:
        """Cut ``text`` to ``max_body_kb`` KiB of UTF-8 (never inside a character), marking
        the cut with ``…(truncated)``."""
        return truncate_body(text, self.max_body_kb * 1024)

    def _prepare(
        self, record: InterceptedRequest
    ) -> tuple[InterceptedRequest, tuple[Any, ...] | None]:
        """The record masked and capped, and the key of its unmasked request side."""
        key = None
        if record.masked:
            masked = record
        else:
            key = _request_key(record)
            previous = self._records.get(record.id)
            if previous is not None and key == previous.request_key:
                # The final state of a call whose request was masked when it started: mask
                # only what is new (the response side), keep the masked request side.
                masked = mask_record(record, request_from=previous.full())
            else:
                masked = mask_record(record)
        request_body, cut_request = self.truncate_body(masked.request_body)
        response_body, cut_response = self.truncate_body(masked.response_body)
        if cut_request or cut_response:
            masked = masked_copy(
                masked,
                {
                    "request_body": request_body,
                    "response_body": response_body,
                    "body_truncated": True,
                },
            )
        return masked, key

    def _notify(self, event: EventType, record: InterceptedRequest | None) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event, record)
            except Exception:
                log.exception("inspector subscriber failed on %s", event)


def truncate_body(text: str | None, max_bytes: int) -> tuple[str | None, bool]:
    """``(text, False)`` when it fits in ``max_bytes`` of UTF-8, else the longest prefix that
    fits (suffix included) ending in ``…(truncated)``, and True."""
    if text is None or len(text) * 4 <= max_bytes:  # UTF-8 never exceeds 4 bytes a character
        return text, False
    data = text.encode("utf-8", errors="surrogatepass")
    if len(data) <= max_bytes:
        return text, False
    room = max(0, max_bytes - len(TRUNCATED_SUFFIX.encode()))
    head = data[:room].decode("utf-8", errors="ignore")
    return head + TRUNCATED_SUFFIX, True


def cap_strings(value: Any, max_chars: int) -> Any:
    """``value`` (parsed JSON) with every string longer than ``max_chars`` cut to that many
    characters and marked ``…(truncated)``: what a record keeps of a huge body, taken before
    it is masked or serialised, so neither works on (or copies) the whole text. Returns
    ``value`` itself when no string is that long; otherwise copies only the containers.
    Iterative, so a deeply nested body cannot exhaust the stack."""
    if isinstance(value, str):
        return value if len(value) <= max_chars else value[:max_chars] + TRUNCATED_SUFFIX
    if not _has_long_string(value, max_chars):
        return value
    root: list[Any] = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        parent, key = stack.pop()
        item = parent[key]
        if isinstance(item, str):
            if len(item) > max_chars:
                parent[key] = item[:max_chars] + TRUNCATED_SUFFIX
        elif isinstance(item, dict):
            copy = dict(item)
            parent[key] = copy
            stack.extend((copy, k) for k in copy)
        elif isinstance(item, list):
            items = list(item)
            parent[key] = items
            stack.extend((items, i) for i in range(len(items)))
    return root[0]


def _has_long_string(value: Any, max_chars: int) -> bool:
    stack = [value] if isinstance(value, dict | list) else []
    while stack:
        item = stack.pop()
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, str):
                if len(child) > max_chars:
                    return True
            elif isinstance(child, dict | list):
                stack.append(child)
    return False


# --------------------------------------------------------------------------- threads


def previous_in_thread(
    records: Iterable[InterceptedRequest], record: InterceptedRequest
) -> InterceptedRequest | None:
    """The latest record before ``record`` (by timestamp) with the same contextKey."""
    if record.context_key is None:
        return None
    best: InterceptedRequest | None = None
    for other in records:
        if other.id == record.id or other.context_key != record.context_key:
            continue
        if other.timestamp < record.timestamp and (
            best is None or other.timestamp > best.timestamp
        ):
            best = other
    return best


def _turns(record: InterceptedRequest | None, part: str) -> list[dict[str, Any]]:
    if record is None or record.llm is None or record.llm.conversation is None:
        return []
    turns = record.llm.conversation.get(part)
    return [t for t in turns if isinstance(t, dict)] if isinstance(turns, list) else []


def _turn_key(turn: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two turns "the same" across calls: role and visible blocks. Thinking is
    ignored because clients often strip or re-sign it when they send history back."""
    blocks = turn.get("blocks")
    kept = tuple(
        repr(sorted(b.items()))
        for b in (blocks if isinstance(blocks, list) else [])
        if isinstance(b, dict) and b.get("type") != "thinking"
    )
    return (turn.get("role"), kept)


def added_since_previous(
    prev_record: InterceptedRequest | None, record: InterceptedRequest
) -> list[dict[str, Any]]:
    """The conversation turns ``record`` added to its thread: its request turns after the
    prefix it shares with the previous call (skipping the previous call's answer, echoed back
    as history), followed by its own response turns. Without a previous call, everything."""
    request = _turns(record, "request")
    response = _turns(record, "response")
    if prev_record is None:
        return request + response
    prev_request = _turns(prev_record, "request")
    shared = _common_prefix(request, prev_request)
    if shared == len(prev_request):
        echoed = len(_turns(prev_record, "response"))
        while echoed and shared < len(request) and request[shared].get("role") == "assistant":
            shared += 1
            echoed -= 1
    return request[shared:] + response


def _common_prefix(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> int:
    n = 0
    for left, right in zip(a, b, strict=False):
        if _turn_key(left) != _turn_key(right):
            break
        n += 1
    return n
