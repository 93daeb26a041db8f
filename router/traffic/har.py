"""HAR 1.2 export of inspector records (Chrome DevTools and mitmproxy can import it)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, quote

from router import jsonfast
from router.traffic.masking import mask_record
from router.traffic.record import InterceptedRequest

_URL_SAFE = "/?#[]@!$&'()*+,;=:%~"
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def build_har(records: Iterable[InterceptedRequest], *, version: str) -> dict[str, Any]:
    """``{"log": {...}}`` with one entry per record, in the order given: the document
    :func:`iter_har` streams, as a dict."""
    return dict(jsonfast.loads(b"".join(iter_har(records, version=version))))


def iter_har(
    records: Iterable[InterceptedRequest], *, version: str, chunk_bytes: int = 256 * 1024
) -> Iterator[bytes]:
    """The same document as :func:`build_har`, as UTF-8 JSON in chunks of about
    ``chunk_bytes``, built record by record: an export streams and never holds every entry
    (or the whole document) at once. Each record is masked unless it already is."""
    head = {"version": "1.2", "creator": {"name": "llmtap", "version": version}}
    opening = jsonfast.dumps({"log": head})[:-2] + b',"entries":['
    parts: list[bytes] = [opening]
    size = len(opening)
    first = True
    for record in records:
        entry = jsonfast.dumps(har_entry(mask_record(record)))
        if not first:
            parts.append(b",")
        parts.append(entry)
        first = False
        size += len(entry) + 1
        if size >= chunk_bytes:
            yield b"".join(parts)
            parts, size = [], 0
    parts.append(b"]}}")
    yield b"".join(parts)


def har_entry(record: InterceptedRequest) -> dict[str, Any]:
    send = _ms(record.proxy_latency_ms)
    wait = _ms(record.ttfb_ms)
    if record.upstream_latency_ms is not None:
        receive = max(0.0, _ms(record.upstream_latency_ms) - wait)
    else:
        # No upstream leg (a CONNECT tunnel, an error before connecting): the rest of the
        # total is the only time we know about.
        receive = max(0.0, _ms(record.total_latency_ms) - send - wait)
    timings = {
        "blocked": -1,
        "dns": -1,
        "connect": -1,
        "send": send,
        "wait": wait,
        "receive": round(receive, 3),
        "ssl": -1,
    }
    entry: dict[str, Any] = {
        "startedDateTime": _iso(record.timestamp),
        "time": round(send + wait + timings["receive"], 3),
        "request": _request(record),
        "response": _response(record),
        "cache": {},
        "timings": timings,
        "_llmtapId": record.id,
        "_source": record.source,
        "_agent": record.agent,
        "_detectedKind": record.detected_kind,
        "_contextKey": record.context_key,
        "_sessionId": record.session_id,
        "_llm": record.llm.model_dump(mode="json", by_alias=True) if record.llm else None,
    }
    if record.annotation:
        entry["comment"] = record.annotation
    if record.note:
        entry["_note"] = record.note
    if record.body_truncated:
        entry["_bodyTruncated"] = True
    return entry


def request_url(record: InterceptedRequest) -> str:
    """The real origin URL: scheme, host, and the port unless it is the scheme's default
    (always shown for a CONNECT tunnel, whose target is exactly a host and port)."""
    host = f"[{record.host}]" if ":" in record.host else record.host
    default = _DEFAULT_PORTS.get(record.scheme)
    authority = (
        host if record.port == default and record.method != "CONNECT" else f"{host}:{record.port}"
    )
    path = record.path if record.path.startswith("/") else "/" + record.path
    if record.method == "CONNECT":
        path = "/"
    # Masked values carry "…": a URL must stay ASCII, so anything outside it is escaped.
    return f"{record.scheme}://{authority}{quote(path, safe=_URL_SAFE)}"


def _request(record: InterceptedRequest) -> dict[str, Any]:
    query = record.path.partition("?")[2] if record.method != "CONNECT" else ""
    request: dict[str, Any] = {
        "method": record.method,
        "url": request_url(record),
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": _headers(record.request_headers),
        "queryString": [
            {"name": name, "value": value}
            for name, value in parse_qsl(query.partition("#")[0], keep_blank_values=True)
        ],
        "headersSize": -1,
        "bodySize": record.request_size if record.request_body is not None else 0,
    }
    if record.request_body:
        request["postData"] = {
            "mimeType": _header(record.request_headers, "content-type") or "",
            "text": record.request_body,
        }
    return request


def _response(record: InterceptedRequest) -> dict[str, Any]:
    status = record.status if isinstance(record.status, int) else 0
    response: dict[str, Any] = {
        "status": status,
        "statusText": _reason(status),
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": _headers(record.response_headers),
        "content": {
            "size": record.response_size,
            "mimeType": _header(record.response_headers, "content-type") or "x-unknown",
            "text": record.response_body or "",
        },
        "redirectURL": _header(record.response_headers, "location") or "",
        "headersSize": -1,
        "bodySize": record.response_size if isinstance(record.status, int) else -1,
    }
    if record.status == "in-flight":
        response["_inFlight"] = True
    if record.error:
        response["_error"] = record.error
    return response


def _headers(headers: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in headers.items()]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _ms(value: float | None) -> float:
    return round(max(0.0, value), 3) if value is not None else 0.0


def _iso(ts: datetime) -> str:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)  # records are stamped in UTC; a naive one is UTC too
    return ts.isoformat(timespec="milliseconds")
