"""The router API: OpenAI, Anthropic, Responses and Gemini compatible endpoints under /v1."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from router import __version__
from router.bridge.divert import read_hop, strip_hop
from router.engine import Inbound, Reply, count_tokens, model_list
from router.errors import BadRequest, FieldError, NotFound, Unauthorized
from router.formats import get_codec
from web import v1_ws
from web.context import Services, services
from web.errors import REQUEST_ID_KEY, read_json, request_id
from web.security import HOP_SECRET

log = logging.getLogger("llmtap.web.v1")

routes = web.RouteTableDef()
PREFIXES = ("", "/api")


def _api_key(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return (
        request.headers.get("x-api-key")
        or request.headers.get("x-goog-api-key")
        or request.query.get("key")
    )


def _authorize(request: web.Request, svc: Services) -> str | None:
    """The router API key id, enforcing it when ``requireApiKey`` is on."""
    key = _api_key(request)
    key_id = svc.verify_key(key) if key else None
    if svc.settings.require_api_key and key_id is None:
        raise Unauthorized(
            "a valid router API key is required (Authorization: Bearer or x-api-key)"
        )
    return key_id


async def _inbound(request: web.Request, fmt: str, **kw: object) -> tuple[Services, Inbound]:
    svc = services(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    # An agent call diverted by the capture side: authenticated by the process secret instead
    # of a router key, and the call keeps the capture record's id (one record per call).
    hop = read_hop(headers, HOP_SECRET)
    strip_hop(headers)
    if hop is not None:
        request[REQUEST_ID_KEY] = hop.request_id
    key_id = _authorize(request, svc) if hop is None else None
    body = await read_json(request, limit_mb=svc.settings.max_request_mb)
    inbound = Inbound(
        format=fmt,
        body=body,
        path=request.path,
        request_id=request_id(request),
        api_key_id=key_id,
        headers=headers,
        query=request.query_string,
        **kw,  # type: ignore[arg-type]
    )
    if hop is not None:
        inbound.agent, inbound.source = hop.agent, hop.source
        inbound.model_override, inbound.effort_override = hop.model, hop.effort
    return svc, inbound


async def send(request: web.Request, reply: Reply) -> web.StreamResponse:
    """Write a router reply: whole JSON, or SSE flushed event by event. A client that goes
    away closes the stream generator, which cancels the upstream call."""
    if reply.stream is None:
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)
    resp = web.StreamResponse(status=reply.status, headers=reply.headers)
    stream = reply.stream
    try:
        await resp.prepare(request)
        async for chunk in stream:
            await resp.write(chunk)
        await resp.write_eof()
    except (ConnectionError, asyncio.CancelledError) as exc:
        log.debug("client went away mid-stream: %r", exc)
        if isinstance(exc, asyncio.CancelledError):
            raise
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return resp


async def _route(request: web.Request, fmt: str, **kw: object) -> web.StreamResponse:
    svc, inbound = await _inbound(request, fmt, **kw)
    reply = await svc.router.handle(inbound)
    return await send(request, reply)


def _both(path: str) -> list[str]:
    return [prefix + path for prefix in PREFIXES]


def chat_path_format(body: object) -> str:
    """The format of a call to a chat completions path. The codecs decide: ``input`` without
    ``messages`` there is a Responses body (router.md). Only these two formats claim a chat
    path: this is ``format_for_path``'s answer for one, without asking every codec per call."""
    return "responses" if get_codec("responses").detect_body(body) else "openai-chat"


async def chat_completions(request: web.Request) -> web.StreamResponse:
    pinned = request.match_info.get("provider")
    svc, inbound = await _inbound(request, "openai-chat", pinned=pinned)
    inbound.format = chat_path_format(inbound.body)
    reply = await svc.router.handle(inbound)
    return await send(request, reply)


async def messages(request: web.Request) -> web.StreamResponse:
    return await _route(request, "anthropic", pinned=request.match_info.get("provider"))


async def messages_count_tokens(request: web.Request) -> web.Response:
    _svc, inbound = await _inbound(request, "anthropic")
    return web.json_response(count_tokens(inbound))


async def responses(request: web.Request) -> web.StreamResponse:
    return await _route(request, "responses", pinned=request.match_info.get("provider"))


async def gemini(request: web.Request) -> web.StreamResponse:
    model, _, action = request.match_info["model_action"].rpartition(":")
    if action not in ("generateContent", "streamGenerateContent") or not model:
        raise NotFound(f"unknown Gemini method '{action}'")
    return await _route(
        request, "gemini", path_model=model, path_stream=action == "streamGenerateContent"
    )


async def cloudcode(request: web.Request) -> web.StreamResponse:
    # Cloud Code's v1internal envelope (Antigravity's own wire format), as diverted agent
    # calls arrive; the method in the path says whether the answer streams.
    stream = request.path.endswith(":streamGenerateContent")
    return await _route(request, "cloudcode", path_stream=stream)


async def models(request: web.Request) -> web.Response:
    svc = services(request)
    _authorize(request, svc)
    return web.json_response({"object": "list", "data": model_list(svc.router)})


async def provider_models(request: web.Request) -> web.Response:
    svc = services(request)
    _authorize(request, svc)
    ref = request.match_info["provider"]
    conns = svc.catalog.connection_by_ref(ref)
    if not conns:
        raise BadRequest(f"unknown provider '{ref}'", [FieldError("provider", "unknown provider")])
    data = [
        {"id": m, "object": "model", "owned_by": c.provider, "created": 0}
        for c in conns
        for m in c.models
    ]
    return web.json_response({"object": "list", "data": data})


async def index(request: web.Request) -> web.Response:
    return web.json_response({"name": "llmtap", "version": __version__, "status": "ok"})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The Responses paths take a POST and, for Codex's WebSocket, a GET upgrade (web/v1_ws.py).
_RESPONSES = ("/v1/responses", "/v1/providers/{provider}/responses")
# (method, paths, handler): each path also under /api (``_both``).
_ROUTES: tuple[tuple[str, tuple[str, ...], Handler], ...] = (
    (
        "POST",
        ("/v1/chat/completions", "/v1/providers/{provider}/chat/completions"),
        chat_completions,
    ),
    ("POST", ("/v1/messages", "/v1/providers/{provider}/messages"), messages),
    ("POST", ("/v1/messages/count_tokens",), messages_count_tokens),
    ("POST", _RESPONSES, responses),
    ("POST", ("/v1beta/models/{model_action:.+}", "/v1/models/{model_action:.+:.+}"), gemini),
    ("POST", ("/v1internal:generateContent", "/v1internal:streamGenerateContent"), cloudcode),
    ("GET", ("/v1/models",), models),
    ("GET", ("/v1/providers/{provider}/models",), provider_models),
    ("GET", ("/v1", "/v1/"), index),
)


def add_routes(app: web.Application) -> None:
    r = app.router
    for method, paths, handler in _ROUTES:
        add = r.add_get if method == "GET" else r.add_post  # add_get answers HEAD too
        for path in paths:
            for p in _both(path):
                add(p, handler)
    v1_ws.add_routes(app, [p for path in _RESPONSES for p in _both(path)], _authorize)
