"""Edit and resend a recorded call: POST /api/tools/traffic-inspector/requests/{id}/resend
sends the recorded request again, with its body and/or model changed, either through the
router (recorded as a new call, source ``router``) or to the host it originally went to.
The answer comes back rendered (the merged conversation turns, never raw SSE) beside its
status and masked body, so the UI can show old and new answers side by side."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from router import ir
from router.errors import BadRequest, FieldError, NotFound
from router.traffic.masking import mask_body, mask_headers, mask_json, mask_text
from router.traffic.merge import merge_stream, parse_response, response_turns
from router.traffic.record import InterceptedRequest
from web.context import runtime, services
from web.errors import read_json
from web.inspector import PREFIX, replay_inbound, rerun
from web.openapi import doc
from web.validation import parse_body

routes = web.RouteTableDef()

# Never copied from the recorded request to a resend: transport framing (recomputed), the
# masked secrets (a "***" key would only earn a 401) and llmtap's own markers.
_DROP = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "accept-encoding",
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "cookie",
}


class ResendBody(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    target: Literal["router", "original"] = "router"
    body: dict[str, Any] | str | None = None  # the edited request body (default: as recorded)
    model: str | None = Field(default=None, min_length=1, max_length=300)
    # Extra headers for the original host (e.g. the real API key the record only has masked).
    # Sent, never stored or echoed.
    headers: dict[str, str] = Field(default_factory=dict, max_length=50)


def _edited(record: InterceptedRequest, body: ResendBody) -> InterceptedRequest:
    if body.body is None:
        return record
    text = body.body if isinstance(body.body, str) else json.dumps(body.body)
    return record.model_copy(update={"request_body": text, "body_truncated": None})


def _format(record: InterceptedRequest) -> str | None:
    return record.llm.format if record.llm is not None else None


def _answer(fmt: str | None, content_type: str, raw: bytes) -> list[dict[str, Any]]:
    """The reply as conversation turns, by the same merge the inspector records with."""
    resp: ir.Response | None
    if "text/event-stream" in content_type:
        resp = merge_stream(fmt, raw)
    else:
        try:
            resp = parse_response(fmt, json.loads(raw or b"null"))
        except ValueError:
            resp = None
    turns: list[dict[str, Any]] = mask_json(response_turns(resp))
    return turns


def _result(
    status: int,
    headers: Mapping[str, str],
    raw: bytes,
    fmt: str | None,
    *,
    target: str,
    record_id: str | None,
    url: str,
) -> dict[str, Any]:
    headers = CIMultiDict(headers)  # a router reply's headers are a plain dict
    content_type = headers.get("content-type", "")
    text = raw.decode("utf-8", errors="replace")
    return {
        "target": target,
        "url": url,
        "status": status,
        "recordId": record_id,
        "contentType": content_type,
        "headers": mask_headers({k.lower(): v for k, v in headers.items()}),
        "body": mask_body(text, content_type),
        "answer": _answer(fmt, content_type, raw),
    }


async def _via_router(
    request: web.Request, record: InterceptedRequest, body: ResendBody
) -> dict[str, Any]:
    inbound = replay_inbound(_edited(record, body), body.model)
    reply = await rerun(request, runtime(request).inspector, record, inbound, "resend")
    raw = reply.body or b""
    if reply.stream is not None:
        chunks: list[bytes] = []
        try:
            async for chunk in reply.stream:
                chunks.append(chunk)
        finally:
            await reply.stream.aclose()  # type: ignore[attr-defined]
        raw = b"".join(chunks)
    return _result(
        reply.status,
        reply.headers,
        raw,
        inbound.format,
        target="router",
        record_id=inbound.request_id,
        url=inbound.path,
    )


def _original_url(record: InterceptedRequest) -> str:
    if record.method == "CONNECT" or record.scheme not in ("http", "https"):
        raise BadRequest(
            "only HTTP requests can be resent to their host",
            [FieldError("target", "this record is a tunnel, not an HTTP request")],
        )
    default = 443 if record.scheme == "https" else 80
    port = "" if record.port == default else f":{record.port}"
    host = f"[{record.host}]" if ":" in record.host else record.host
    return f"{record.scheme}://{host}{port}{record.path}"


async def _to_original(
    request: web.Request, record: InterceptedRequest, body: ResendBody
) -> dict[str, Any]:
    edited = _edited(record, body)
    data = (edited.request_body or "").encode()
    if body.model is not None:
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise BadRequest(
                "a model can only be set on a JSON object body",
                [FieldError("model", "the request body is not a JSON object")],
            )
        data = json.dumps({**parsed, "model": body.model}).encode()
    headers = {k: v for k, v in edited.request_headers.items() if k.lower() not in _DROP}
    headers.update(body.headers)
    url = _original_url(record)
    limit = services(request).settings.max_response_mb << 20
    client = services(request).router.session
    try:
        async with client.request(
            edited.method, url, data=data or None, headers=headers, allow_redirects=False
        ) as resp:
            raw = await resp.content.read(limit)
            return _result(
                resp.status,
                resp.headers,
                raw,
                _format(record),
                target="original",
                record_id=None,
                url=url,
            )
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return {
            "target": "original",
            "url": url,
            "status": "error",
            "recordId": None,
            "error": mask_text(f"{type(exc).__name__}: {exc}"),
            "answer": [],
        }


class ResendResult(BaseModel):
    """The new call's outcome, next to the recorded answer (``original``)."""

    model_config = ConfigDict(extra="allow")
    original: dict[str, Any]


@routes.post(f"{PREFIX}/requests/{{id}}/resend")
@doc("send the recorded (or an edited) request again, to the router or the original host",
     request=ResendBody, response=ResendResult, errors=(429, 502, 504))  # fmt: skip
async def resend(request: web.Request) -> web.Response:
    record_id = request.match_info["id"]
    body = parse_body(ResendBody, await read_json(request))
    record = runtime(request).inspector.find(record_id)
    if record is None:
        raise NotFound(f"request '{record_id}' not found")
    if record.body_truncated and body.body is None:
        raise BadRequest("the recorded request body was truncated; send an edited body")
    if body.target == "router":
        result = await _via_router(request, record, body)
    else:
        result = await _to_original(request, record, body)
    result["original"] = {"id": record.id, "answer": _recorded_answer(record)}
    return web.json_response(result)


def _recorded_answer(record: InterceptedRequest) -> list[Any]:
    convo = record.llm.conversation if record.llm is not None else None
    answer = convo.get("response") if isinstance(convo, dict) else None
    return answer if isinstance(answer, list) else []
