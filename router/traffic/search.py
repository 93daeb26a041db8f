"""Full-text search over inspector records: the text a user can read in a call (URL, models,
request and response bodies, the merged response, the conversation, notes), masked as the
records are. Case-insensitive substring match, like a search box."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from router.traffic.record import InterceptedRequest

SNIPPET_CONTEXT = 40  # characters shown either side of the first hit


@dataclass(frozen=True, slots=True)
class Hit:
    """One matching record: where the words were found and a snippet around the first."""

    record: InterceptedRequest
    fields: tuple[str, ...]
    snippet: str


def _strings(value: Any) -> Iterator[str]:
    """Every string value inside a JSON-like value (keys are structure, not content)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _fields(record: InterceptedRequest) -> Iterator[tuple[str, str]]:
    yield "url", f"{record.method} {record.host}{record.path}"
    llm = record.llm
    models = [record.source_model, record.mapped_model, llm.model if llm else None]
    yield "model", " ".join(m for m in models if m)
    if llm is not None and llm.conversation is not None:
        yield "conversation", "\n".join(_strings(llm.conversation))
    if record.request_body:
        yield "request", record.request_body
    if record.response_body:
        yield "response", record.response_body
    if llm is not None and llm.response is not None:
        yield "response", "\n".join(_strings(llm.response))
    if record.upstream_request is not None and record.upstream_request.body:
        yield "upstream", record.upstream_request.body
    for name in ("annotation", "note", "error"):
        value = getattr(record, name)
        if value:
            yield name, value


def match(record: InterceptedRequest, query: str) -> Hit | None:
    """The hit for ``record`` when every word of ``query`` occurs in its text (each word
    anywhere), else None."""
    words = query.casefold().split()
    if not words:
        return None
    found: list[str] = []
    missing = set(words)
    snippet = ""
    for name, text in _fields(record):
        folded = text.casefold()
        hit = [w for w in words if w in folded]
        if not hit:
            continue
        if name not in found:
            found.append(name)
        if not snippet:
            at = folded.find(hit[0])
            start = max(0, at - SNIPPET_CONTEXT)
            end = min(len(text), at + len(hit[0]) + SNIPPET_CONTEXT)
            snippet = (
                ("…" if start else "")
                + " ".join(text[start:end].split())
                + ("…" if end < len(text) else "")
            )
        missing.difference_update(hit)
    if missing:
        return None
    return Hit(record, tuple(found), snippet)


def search(
    records: Iterable[InterceptedRequest], query: str, *, limit: int
) -> tuple[list[Hit], bool]:
    """Hits among ``records`` in their order, at most ``limit``; and whether more matched."""
    hits: list[Hit] = []
    for record in records:
        hit = match(record, query)
        if hit is None:
            continue
        if len(hits) >= limit:
            return hits, True
        hits.append(hit)
    return hits, False


def prefilter(text: str, query: str) -> bool:
    """A cheap test on a stored record's JSON text before it is parsed: False only when a
    word certainly does not occur (JSON escaping can only hide words with quotes,
    backslashes or control characters, which skip the test)."""
    folded = text.casefold()
    for word in query.casefold().split():
        if any(c in word for c in '"\\') or not word.isprintable():
            continue
        if word not in folded:
            return False
    return True
