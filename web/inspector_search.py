"""Full-text search of the Traffic Inspector: GET /api/tools/traffic-inspector/search finds
calls by a word in their prompt, reply, conversation or notes, in the live buffer and in the
recording sessions stored on disk (which outlive the buffer and restarts). Only masked
content is searched: it is all the inspector holds."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from router.errors import BadRequest, FieldError
from router.store import sessions as store_sessions
from router.traffic.record import InterceptedRequest, RecordFilter
from router.traffic.search import Hit, prefilter, search
from router.traffic.service import Inspector
from web.context import runtime
from web.inspector import PREFIX
from web.openapi import doc

MAX_QUERY = 200
DEFAULT_LIMIT = 500
MAX_LIMIT = 5000

routes = web.RouteTableDef()


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(
            "'limit' must be an integer from 1 to 5000",
            [FieldError("limit", f"an integer from 1 to {MAX_LIMIT}")],
        )
    return int(raw)


def _stored(query: str, session_id: str | None, seen: set[str]) -> Iterator[InterceptedRequest]:
    """Stored session records (newest session first, newest record first) that may match,
    skipping ids already searched (the live copy of a record is the newer one)."""
    sessions = [session_id] if session_id else [s.id for s in store_sessions.list_all()]
    for sid in sessions:
        for text in reversed(store_sessions.list_records(sid)):
            if not prefilter(text, query):
                continue
            record = InterceptedRequest.model_validate_json(text)
            if record.id in seen:
                continue
            seen.add(record.id)
            yield record


def _run(query: str, flt: RecordFilter, limit: int, inspector: Inspector) -> dict[str, Any]:
    live_ids: set[str] = set()

    def records() -> Iterator[InterceptedRequest]:
        if flt.session_id is None:
            for record in inspector.iter_records(flt):
                live_ids.add(record.id)
                yield record
        for record in _stored(query, flt.session_id, set(live_ids)):
            if flt.matches(record):  # a stored copy carries the id of the session holding it
                yield record

    hits, truncated = search(records(), query, limit=limit)
    return {
        "query": query,
        "count": len(hits),
        "truncated": truncated,
        "results": [_result(hit, hit.record.id in live_ids) for hit in hits],
        # Stored records the live buffer no longer holds: the UI lists them as they are.
        "records": [hit.record.to_wire() for hit in hits if hit.record.id not in live_ids],
    }


def _result(hit: Hit, live: bool) -> dict[str, Any]:
    return {"id": hit.record.id, "fields": list(hit.fields), "snippet": hit.snippet, "live": live}


class SearchResult(BaseModel):
    """The hits (``id``, ``fields``, ``snippet``, ``live``) and what was searched."""

    model_config = ConfigDict(extra="allow")


@routes.get(f"{PREFIX}/search")
@doc("search the live buffer and stored sessions (every word must occur)",
     response=SearchResult, errors=(400, 404))  # fmt: skip
async def search_records(request: web.Request) -> web.Response:
    """``q`` (required; every word must occur, case-insensitive), ``limit`` (default 500),
    and the list filters (``sessionId`` searches that session's stored records only; without
    it the live buffer and then every stored session are searched)."""
    query = (request.query.get("q") or "").strip()
    if not query or len(query) > MAX_QUERY:
        raise BadRequest(
            "'q' is required (1 to 200 characters)",
            [FieldError("q", f"1 to {MAX_QUERY} characters")],
        )
    limit = _limit(request.query.get("limit"))
    flt = RecordFilter.from_query(request.query)
    rt = runtime(request)
    writer = rt.session_writer
    if writer is not None:
        await asyncio.to_thread(writer.flush, 10.0)
    # Decompressing and scanning thousands of bodies: off the event loop. What the live
    # records hold back (in-flight router calls nobody watched) is published here, on it.
    rt.inspector.publish_pending()
    result = await asyncio.to_thread(_run, query, flt, limit, rt.inspector)
    return web.json_response(result)
