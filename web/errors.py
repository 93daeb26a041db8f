"""One error middleware: every failure leaves as ``{"error": {message, type, code?, details?,
requestId}}`` with the status that fits; request ids on every response; no stack traces."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from router import __version__, jsonfast
from router.errors import BadRequest, FieldError, LlmtapError, PayloadTooLarge, validation_error
from web.validation import check_json_shape, too_deep

log = logging.getLogger("llmtap.web")

REQUEST_ID = "X-OmniRoute-Request-Id"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


REQUEST_ID_KEY: web.RequestKey[str] = web.RequestKey("llmtap.request_id", str)


def request_id(request: web.Request) -> str:
    rid = request.get(REQUEST_ID_KEY)
    if rid is None:
        # 128 random bits in hex, like uuid4().hex: two C calls instead of uuid's Python.
        rid = request[REQUEST_ID_KEY] = os.urandom(16).hex()
    return rid


def envelope(
    status: int,
    message: str,
    err_type: str,
    rid: str,
    *,
    code: str | None = None,
    details: list[dict[str, str]] | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    err: dict[str, Any] = {"message": message, "type": err_type, "requestId": rid}
    if code:
        err["code"] = code
    if details:
        err["details"] = details
    if extra:
        err.update(extra)
    return web.json_response(
        {"error": err},
        status=status,
        headers={**(headers or {}), REQUEST_ID: rid, "X-OmniRoute-Version": __version__},
    )


def error_response(exc: BaseException, rid: str) -> web.Response:
    if isinstance(exc, ValidationError):
        exc = validation_error(exc, "invalid request body")
    if isinstance(exc, LlmtapError):
        details = [d.as_dict() for d in exc.details] if isinstance(exc, BadRequest) else None
        extra: dict[str, Any] | None = None
        attempts = getattr(exc, "attempts", None)
        if attempts:
            extra = {
                "attempts": [
                    {
                        "provider": a.provider,
                        "model": a.model,
                        "status": a.status,
                        "error": a.error,
                        "skipped": a.skipped,
                    }
                    for a in attempts
                ]
            }
        return envelope(
            exc.status,
            exc.message,
            exc.type,
            rid,
            code=exc.code,
            details=details,
            extra=extra,
            headers=exc.headers,  # e.g. the upstream's Retry-After on a final 429
        )
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        too = PayloadTooLarge("request body too large")
        return envelope(too.status, too.message, too.type, rid, code=too.code)
    if isinstance(exc, web.HTTPException):
        err_type = "not_found_error" if exc.status == 404 else "invalid_request_error"
        if exc.status == 405:
            err_type = "method_not_allowed"
        response = envelope(exc.status, exc.reason or "error", err_type, rid)
        if isinstance(exc, web.HTTPMethodNotAllowed):  # RFC 9110: a 405 lists what is allowed
            response.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
        return response
    log.exception("unhandled error (request %s)", rid, exc_info=exc)
    return envelope(500, "internal server error", "server_error", rid)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = request_id(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc, rid)
    except Exception as exc:
        return error_response(exc, rid)
    if not response.prepared:
        response.headers.setdefault(REQUEST_ID, rid)
    return response


async def read_body(request: web.Request) -> bytearray:
    """The whole body, read once into one buffer and not kept on the request.

    aiohttp's ``request.read()`` builds the body twice (a bytearray, then ``bytes`` of it) and
    caches the result on the request object, which a keep-alive connection holds until its
    next request arrives: a 30 MB body stayed in memory for as long as the client kept the
    connection open. The app's ``client_max_size`` still applies (413)."""
    limit = request.client_max_size
    body = bytearray()
    while chunk := await request.content.readany():
        body += chunk
        if limit and len(body) > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    return body


def parse_json(raw: bytes | bytearray) -> dict[str, Any]:
    """``raw`` as a JSON object, or a field-level 400."""
    if not raw:
        raise BadRequest("request body is empty; a JSON object is required", [_body("required")])
    try:
        data = jsonfast.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON: {exc}", [_body("malformed JSON")]) from None
    except RecursionError:
        raise too_deep(raw) from None
    check_json_shape(raw, data)
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object", [_body("expected object")])
    return data


async def read_json(request: web.Request, *, limit_mb: int | None = None) -> dict[str, Any]:
    """The request body as a JSON object, or a field-level 400 / 413. Read once: a second
    call on the same request finds the body consumed."""
    if limit_mb is not None and request.content_length and request.content_length > limit_mb << 20:
        raise PayloadTooLarge(f"request body exceeds {limit_mb} MiB")
    return parse_json(await read_body(request))


def _body(message: str) -> FieldError:
    return FieldError("body", message)
