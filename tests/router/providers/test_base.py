"""Provider kinds: URLs and auth on the wire, model lists, and error mapping, against the fake."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from router.errors import BadRequest, UpstreamError
from router.providers import (
    ANTHROPIC_VERSION,
    PROVIDER_KINDS,
    ROUTER_MARKER_HEADER,
    get_provider,
    list_models,
    make_client,
    normalize_url,
    open_call,
    provider_format,
    retry_after_seconds,
)
from router.store.records import ProviderConnection
from tests.fakes.upstream import FakeUpstream, Reply

KEY = "sk-secret-0123456789abcdef"
PREFIX = {"openai": "/v1", "anthropic": "/v1", "gemini": "/v1beta"}
BODIES: dict[str, dict[str, Any]] = {
    "openai": {"model": "m-1", "messages": [{"role": "user", "content": "hi"}]},
    "anthropic": {
        "model": "m-1",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
    },
    "gemini": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
}


def connection(fake: FakeUpstream, kind: str, *, key: str | None = KEY) -> ProviderConnection:
    return ProviderConnection(
        id=f"c-{kind}",
        provider=kind,
        name=f"my-{kind}",
        url=f"{fake.url}{PREFIX[kind]}/",
        api_key=key,
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as c:
        yield c


async def call_error(
    client: httpx.AsyncClient, conn: ProviderConnection, *, stream: bool = False
) -> UpstreamError:
    with pytest.raises(UpstreamError) as info:
        await open_call(client, conn, "m-1", BODIES[conn.provider], stream=stream)
    return info.value


def test_kinds_and_formats() -> None:
    assert PROVIDER_KINDS == ("openai", "anthropic", "gemini")
    assert [provider_format(k) for k in PROVIDER_KINDS] == ["openai-chat", "anthropic", "gemini"]
    assert get_provider("openai").formats == ("openai-chat", "responses")
    with pytest.raises(BadRequest):
        provider_format("cohere")


# ---------------------------------------------------------------------- URL and auth on the wire


async def test_openai_url_auth_and_marker(
    fake_upstream: FakeUpstream, client: httpx.AsyncClient
) -> None:
    conn = connection(fake_upstream, "openai")
    async with await open_call(client, conn, "m-1", BODIES["openai"], stream=False) as call:
        body = await call.read_json()
    assert body["object"] == "chat.completion"
    req = fake_upstream.requests[-1]
    assert (req.method, req.path) == ("POST", "/v1/chat/completions")
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.headers[ROUTER_MARKER_HEADER] == "router"
    assert req.json == BODIES["openai"]  # sent untouched


async def test_openai_responses_endpoint(
    fake_upstream: FakeUpstream, client: httpx.AsyncClient
) -> None:
    conn = connection(fake_upstream, "openai")
    body = {"model": "m-1", "input": "hi", "stream": True}
    async with await open_call(
        client, conn, "m-1", body, stream=True, api_format="responses"
    ) as call:
        raw = b"".join([c async for c in call.chunks()])
    assert fake_upstream.requests[-1].path == "/v1/responses"
    assert b"event: response.completed" in raw
    assert call.headers["content-type"].startswith("text/event-stream")


async def test_openai_without_key_sends_no_auth(
    fake_upstream: FakeUpstream, client: httpx.AsyncClient
) -> None:
    conn = connection(fake_upstream, "openai", key=None)
    async with await open_call(client, conn, "m-1", BODIES["openai"], stream=False):
        pass
    assert "authorization" not in fake_upstream.requests[-1].headers


async def test_anthropic_url_and_auth(
    fake_upstream: FakeUpstream, client: httpx.AsyncClient
) -> None:
    conn = connection(fake_upstream, "anthropic")
    extra = {
        "anthropic-beta": "interleaved-thinking-2025-05-14",
        "x-api-key": "stolen",
        "Host": "x",
    }
    async with await open_call(
        client, conn, "m-1", BODIES["anthropic"], stream=False, extra_headers=extra
    ) as call:
        body = await call.read_json()
    assert body["type"] == "message"
    req = fake_upstream.requests[-1]
    assert req.path == "/v1/messages"
    assert req.headers["x-api-key"] == KEY  # extra headers never override the credential
    assert req.headers["anthropic-version"] == ANTHROPIC_VERSION
    assert req.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert "authorization" not in req.headers


async def test_anthropic_rejects_foreign_format(
    fake_upstream: FakeUpstream, client: httpx.AsyncClient
) -> None:
    conn = connection(fake_upstream, "anthropic")
    with pytest.raises(BadRequest):
        await open_call(client, conn, "m-1", {}, stream=False, api_format="responses")
    assert fake_upstream.requests == []


@pytest.mark.parametrize("stream", [False, True])
async def test_gemini_url_and_auth(
    fake_upstream: FakeUpstream, client: httpx.AsyncClient, stream: bool
) -> None:
    conn = connection(fake_upstream, "gemini")
    async with await open_call(
        client, conn, "models/gemini-x", BODIES["gemini"], stream=stream
    ) as call:
        raw = b"".join([c async for c in call.chunks()])
    req = fake_upstream.requests[-1]
    method = "streamGenerateContent" if stream else "generateContent"
    assert req.path == f"/v1beta/models/gemini-x:{method}"
    assert req.query == ({"alt": "sse"} if stream else {})
    assert req.headers["x-goog-api-key"] == KEY
    assert KEY not in str(req.query)
    assert b"Hello" in raw


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
async def test_list_models(
    fake_upstream: FakeUpstream, client: httpx.AsyncClient, kind: str
) -> None:
    fake_upstream.models = ["alpha", "beta-2"]
    assert await list_models(client, connection(fake_upstream, kind)) == ["alpha", "beta-2"]
    req = fake_upstream.requests[-1]
    assert (req.method, req.path) == ("GET", f"{PREFIX[kind]}/models")


async def test_list_models_auth_error(
    fake_upstream: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake_upstream.script(Reply.error(401, "invalid x-api-key"))
    with pytest.raises(UpstreamError) as info:
        await list_models(client, connection(fake_upstream, "anthropic"))
    assert info.value.kind == "auth"
    assert "invalid x-api-key" in info.value.message


# ---------------------------------------------------------------------- status -> kind


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
async def test_server_error(
    fake_upstream: FakeUpstream, client: httpx.AsyncClient, kind: str
) -> None:
    fake_upstream.script(Reply.error(500, "The server had an error"))
    err = await call_error(client, connection(fake_upstream, kind))
    assert err.kind == "server" and err.upstream_status == 500 and err.retryable
    assert err.message == f"my-{kind} ({kind}) returned HTTP 500: The server had an error"


@pytest.mark.parametrize("kind", PROVIDER_KINDS)
async def test_auth_error_message_is_clean(
    fake_upstream: FakeUpstream, client: httpx.AsyncClient, kind: str
) -> None:
    fake_upstream.script(Reply.error(401, f"Incorrect API key provided: {KEY}"))
    err = await call_error(client, connection(fake_upstream, kind))
    assert err.kind == "auth" and not err.retryable
    assert "HTTP 401" in err.message and "Incorrect API key provided" in err.message
    assert KEY not in err.message and KEY not in (err.body or "")
    assert "Traceback" not in err.message


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"Retry-After": "7"}, None, 7.0),
        ({"retry-after-ms": "1500"}, None, 1.5),
        ({"x-ratelimit-reset-requests": "1m30s", "x-ratelimit-reset-tokens": "20ms"}, None, 90.0),
        (
            {},
            {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",
                       "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                    "retryDelay": "37s"}]}},
            37.0,
        ),
    ],
)  # fmt: skip
async def test_rate_limit_retry_after(
    fake_upstream: FakeUpstream,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    body: object,
    expected: float,
) -> None:
    fake_upstream.script(Reply.error(429, "quota", headers=headers, body=body))
    err = await call_error(client, connection(fake_upstream, "openai"))
    assert err.kind == "rate_limit" and err.status == 429
    assert err.retry_after == expected


async def test_rate_limit_http_date(fake_upstream: FakeUpstream, client: httpx.AsyncClient) -> None:
    when = email.utils.formatdate(time.time() + 3600, usegmt=True)
    fake_upstream.script(Reply.error(429, "later", headers={"Retry-After": when}))
    err = await call_error(client, connection(fake_upstream, "anthropic"))
    assert err.kind == "rate_limit"
    assert err.retry_after is not None and 3000 < err.retry_after <= 3600


def test_retry_after_absent_or_garbage() -> None:
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"Retry-After": "soon"}) is None


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("openai", "This model's maximum context length is 128000 tokens. However, your messages "
                   "resulted in 130000 tokens."),
        ("anthropic", "prompt is too long: 210000 tokens > 200000 maximum"),
        ("gemini", "The input token count (1200000) exceeds the maximum number of tokens allowed "
                   "(1048576)."),
    ],
)  # fmt: skip
async def test_context_length(
    fake_upstream: FakeUpstream, client: httpx.AsyncClient, kind: str, message: str
) -> None:
    fake_upstream.script(Reply.error(400, message))
    err = await call_error(client, connection(fake_upstream, kind))
    assert err.kind == "context_length" and err.retryable and err.status == 400
    assert message[:30] in err.message


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "bad_request"), (422, "bad_request"), (404, "not_found"), (403, "auth")],
)
async def test_client_errors(
    fake_upstream: FakeUpstream, client: httpx.AsyncClient, status: int, kind: str
) -> None:
    fake_upstream.script(Reply.error(status, "temperature must be <= 2"))
    err = await call_error(client, connection(fake_upstream, "openai"))
    assert err.kind == kind and err.upstream_status == status
    assert "temperature must be <= 2" in err.message


async def test_html_error_page(fake_upstream: FakeUpstream, client: httpx.AsyncClient) -> None:
    html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    fake_upstream.script(Reply.error(502, "", body=html, headers={"Content-Type": "text/html"}))
    err = await call_error(client, connection(fake_upstream, "openai"))
    assert err.kind == "server"
    assert err.message == "my-openai (openai) returned HTTP 502"


async def test_vendor_shapes_for_messages() -> None:
    oa = get_provider("openai")
    assert oa.error_message({"error": "model 'x' not found"}) == "model 'x' not found"
    assert oa.error_message({"detail": [{"msg": "field required"}]}) == "field required"
    assert oa.error_message({"error": {"message": "", "metadata": {"raw": "origin said no"}}}) == (
        "origin said no"
    )
    assert get_provider("gemini").error_message([{"error": {"message": "bad"}}]) == "bad"
    assert json.dumps(oa.error_message({"nothing": 1})) == "null"


async def test_overloaded_keeps_retry_after(
    fake_upstream: FakeUpstream, client: httpx.AsyncClient
) -> None:
    fake_upstream.script(Reply.error(529, "Overloaded", headers={"retry-after": "3"}))
    err = await call_error(client, connection(fake_upstream, "anthropic"), stream=True)
    assert err.kind == "server" and err.breaker_worthy
    assert err.retry_after == 3.0
    assert err.message == "my-anthropic (anthropic) returned HTTP 529: Overloaded"


# ---------------------------------------------------------------------- forgiving URLs


@pytest.mark.parametrize(
    ("kind", "given", "base"),
    [
        # The SDKs' own base URLs: the bare host, the SDK adds the version.
        ("anthropic", "https://api.anthropic.com", "https://api.anthropic.com/v1"),
        ("anthropic", "https://api.anthropic.com/", "https://api.anthropic.com/v1"),
        ("anthropic", "https://api.anthropic.com/v1/", "https://api.anthropic.com/v1"),
        ("anthropic", "https://api.anthropic.com/v1/messages", "https://api.anthropic.com/v1"),
        (
            "gemini",
            "https://generativelanguage.googleapis.com",
            "https://generativelanguage.googleapis.com/v1beta",
        ),
        (
            "gemini",
            " HTTPS://GenerativeLanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
            ":generateContent?key=AIzaSECRET ",
            "https://generativelanguage.googleapis.com/v1beta",
        ),
        (
            "gemini",
            "https://generativelanguage.googleapis.com/v1",
            "https://generativelanguage.googleapis.com/v1",
        ),
        ("openai", "https://api.openai.com", "https://api.openai.com/v1"),
        ("openai", "https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1"),
        ("openai", "https://api.openai.com/v1/responses#x", "https://api.openai.com/v1"),
        ("openai", "https://openrouter.ai/api/v1/", "https://openrouter.ai/api/v1"),
        ("openai", "https://api.groq.com/openai/v1", "https://api.groq.com/openai/v1"),
        ("openai", "http://127.0.0.1:11434", "http://127.0.0.1:11434/v1"),
        ("openai", "http://localhost:8000//v1//", "http://localhost:8000/v1"),
    ],
)
def test_provider_urls_must_be_forgiving(kind: str, given: str, base: str) -> None:
    assert normalize_url(kind, given) == base
    assert normalize_url(kind, base) == base  # once normalised, stable


@pytest.mark.parametrize(
    "bad", ["", "api.openai.com/v1", "ftp://x", "http://", "https://x:99999", "http://[::1"]
)
def test_provider_url_without_scheme_or_host_is_refused(bad: str) -> None:
    with pytest.raises(BadRequest) as info:
        normalize_url("openai", bad)
    assert [d.field for d in info.value.details] == ["url"]


async def test_rate_limit_headers_and_scope_ride_on_the_error(
    fake_upstream: FakeUpstream, client: httpx.AsyncClient
) -> None:
    headers = {"Retry-After": "3", "x-ratelimit-remaining-tokens": "0", "x-request-id": "r1"}
    fake_upstream.script(Reply.error(429, "Rate limit reached for gpt-4o", headers=headers))
    err = await call_error(client, connection(fake_upstream, "openai"))
    assert err.headers == {"retry-after": "3", "x-ratelimit-remaining-tokens": "0"}
    assert err.rate_limit_scope == "model"
    quota = {
        "error": {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}
    }
    fake_upstream.script(Reply.error(429, "quota", body=quota))
    err = await call_error(client, connection(fake_upstream, "openai"))
    assert err.rate_limit_scope == "connection"
    anthropic_headers = {"anthropic-ratelimit-tokens-remaining": "0", "retry-after-ms": "1500"}
    fake_upstream.script(Reply.error(429, "slow", headers=anthropic_headers))
    err = await call_error(client, connection(fake_upstream, "anthropic"))
    assert err.headers == {**anthropic_headers, "retry-after": "2"}
