"""The provider abstraction: per kind, its wire format, URLs, auth headers, model list and error
mapping (status + headers + body -> a typed :class:`UpstreamError`).

A connection's ``url`` is the API base *including* the version segment:
``https://api.openai.com/v1``, ``https://openrouter.ai/api/v1``, ``http://localhost:11434/v1``,
``https://api.anthropic.com/v1``, ``https://generativelanguage.googleapis.com/v1beta``.
Endpoints are appended to it (``/chat/completions``, ``/responses``, ``/messages``,
``/models/{m}:generateContent``), so OpenAI-compatible servers that mount their API under any
prefix just work. Users paste what the vendor's docs or SDK show, with or without the version
segment, sometimes a whole endpoint URL; :func:`normalize_url` turns that into the base once,
when the connection is written.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from router.errors import BadRequest, FieldError, UpstreamError, UpstreamKind
from router.store.records import ProviderConnection

PROVIDER_KINDS: tuple[str, ...] = ("openai", "anthropic", "gemini")
ANTHROPIC_VERSION = "2023-06-01"
_MAX_MESSAGE = 500
_MAX_BODY = 4096

# Phrases vendors use for "the prompt does not fit" (OpenAI, Anthropic, Gemini, vLLM, Ollama,
# OpenRouter, Groq, DeepSeek). Matched case-insensitively against message and error code.
_CONTEXT_RE = re.compile(
    r"context[ _]length|context[ _]window|maximum context|too many tokens|prompt is too long"
    r"|input is too long|exceeds the maximum number of tokens|maximum number of tokens"
    r"|reduce the length|tokens? limit exceeded|string_above_max_length",
    re.IGNORECASE,
)


class Provider:
    """One provider kind. Stateless; the connection and model come with every call."""

    kind: ClassVar[str]
    format: ClassVar[str]  # the wire format its generation endpoint speaks
    formats: ClassVar[tuple[str, ...]]  # every format it can serve
    # Client request headers this kind's upstream understands, forwarded as the client sent
    # them (lower-case names). ``forward_always``: whatever format the client speaks (feature
    # flags such as ``anthropic-beta``); ``forward_same_format``: only when the client speaks
    # this kind's own format, because they describe that very body (``anthropic-version``).
    # Credentials are never on these lists: the connection's key is the only auth sent.
    forward_always: ClassVar[frozenset[str]] = frozenset()
    forward_same_format: ClassVar[frozenset[str]] = frozenset()
    # The version segment the vendor's SDK appends to its bare host (``https://api.anthropic.com``
    # is the Anthropic SDK's base URL; requests go to ``/v1/messages``).
    default_path: ClassVar[str] = "/v1"
    # A URL copied from a docs example may name a whole endpoint; the base is what precedes it.
    endpoint_re: ClassVar[re.Pattern[str]] = re.compile(r"/models(/.*)?$")

    def check_format(self, api_format: str | None) -> str:
        fmt = api_format or self.format
        if fmt not in self.formats:
            raise BadRequest(f"a {self.kind} connection cannot serve the '{fmt}' format")
        return fmt

    def call_url(
        self, conn: ProviderConnection, model: str, *, stream: bool, api_format: str | None = None
    ) -> str:
        raise NotImplementedError

    def call_format(self, conn: ProviderConnection, inbound_format: str) -> str:
        """The format to send a call in whose client speaks ``inbound_format``: the kind's
        generation format unless the connection serves the client's own format too."""
        return self.format

    def responses_by_default(self, url: str) -> bool:
        """Whether a new connection at ``url`` serves OpenAI's /responses."""
        return False

    def forwarded_headers(self, client: Mapping[str, str], *, same_format: bool) -> dict[str, str]:
        """The client's headers that go on to this kind's upstream (see ``forward_always``)."""
        allowed = self.forward_always | self.forward_same_format if same_format else None
        out: dict[str, str] = {}
        for name, value in client.items():
            lower = name.lower()
            if lower in self.forward_always or (allowed is not None and lower in allowed):
                out[lower] = value
        return out

    def auth_headers(self, conn: ProviderConnection) -> dict[str, str]:
        raise NotImplementedError

    def default_headers(self, *, stream: bool) -> dict[str, str]:
        return {
            "content-type": "application/json",
            "accept": "text/event-stream" if stream else "application/json",
        }

    def models_url(self, conn: ProviderConnection) -> str:
        return f"{base_url(conn)}/models"

    def parse_models(self, body: Any) -> tuple[list[str], str | None]:
        """Model ids from one page of the model list, and the cursor of the next page."""
        raise NotImplementedError

    def next_models_params(self, cursor: str) -> dict[str, str]:
        return {}

    def error_message(self, body: Any) -> str | None:
        """The upstream's own error message out of its JSON error body."""
        return generic_error_message(body)

    def map_error(
        self,
        conn: ProviderConnection,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
    ) -> UpstreamError:
        return map_status_error(self, conn, status, headers, body)


def base_url(conn: ProviderConnection) -> str:
    return conn.url.rstrip("/")


def normalize_url(kind: str, url: str) -> str:
    """The API base for a URL a user gave for a ``kind`` connection: scheme and host
    lower-cased, the query, fragment, trailing slashes and any endpoint path dropped, and the
    kind's version segment added to a bare host. Raises :class:`BadRequest` on the ``url``
    field when it is not an http(s) URL with a host."""
    provider = get_provider(kind)
    invalid = BadRequest(
        f"invalid url '{url}'",
        [FieldError("url", "must be an http:// or https:// URL with a host")],
    )
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018  # raises ValueError on a port out of range
    except ValueError:
        raise invalid from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise invalid
    netloc = parts.netloc if "@" in parts.netloc else parts.netloc.lower()
    path = re.sub(r"/{2,}", "/", parts.path).rstrip("/")
    path = provider.endpoint_re.sub("", path).rstrip("/")
    return urlunsplit((scheme, netloc, path or provider.default_path, "", ""))


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def generic_error_message(body: Any) -> str | None:
    """Walks the error shapes seen in the wild: ``{"error": {"message"}}`` (OpenAI, Anthropic,
    Gemini), ``{"error": "text"}`` (Ollama, some proxies), ``{"message"}``, ``{"detail"}``
    (FastAPI servers such as vLLM), and a JSON array of those (Gemini streaming)."""
    if isinstance(body, list) and body:
        body = body[0]
    if not isinstance(body, dict):
        return None
    err = body.get("error")
    if isinstance(err, dict):
        msg = err.get("message")
        if isinstance(msg, str) and msg:
            return msg
        inner = _get(err, "metadata", "raw")  # OpenRouter wraps the origin's error here
        if isinstance(inner, str) and inner:
            return inner
    if isinstance(err, str) and err:
        return err
    for key in ("message", "detail"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, list) and value and isinstance(value[0], dict):
            msg = value[0].get("msg")
            if isinstance(msg, str):
                return msg
    return None


def _error_code(body: Any) -> str:
    if isinstance(body, list) and body:
        body = body[0]
    parts = [
        _get(body, "error", "code"),
        _get(body, "error", "type"),
        _get(body, "error", "status"),
    ]
    return " ".join(str(p) for p in parts if p)


def _clean(text: str, secret: str | None, limit: int) -> str:
    if secret:
        text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def map_status_error(
    provider: Provider,
    conn: ProviderConnection,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
) -> UpstreamError:
    """A non-2xx answer as a typed error whose message is safe to show: the connection, the
    status and the upstream's own words; never a stack trace, never the API key."""
    text = body.decode("utf-8", errors="replace")
    try:
        parsed: Any = json.loads(text) if text.strip() else None
    except ValueError:
        parsed = None
    upstream_msg = provider.error_message(parsed) if parsed is not None else None
    if upstream_msg is None and text.strip() and not text.lstrip().startswith("<"):
        upstream_msg = text  # a plain-text error; an HTML error page says nothing useful
    code = _error_code(parsed)

    kind: UpstreamKind
    retry_after: float | None = None
    if status in (401, 403):
        kind = "auth"
    elif status == 404:
        kind = "not_found"
    elif status == 408:
        kind = "timeout"
    elif status == 429:
        kind = "rate_limit"
    elif status in (400, 413, 422) and _CONTEXT_RE.search(f"{upstream_msg or ''} {code}"):
        kind = "context_length"
    elif 400 <= status < 500:
        kind = "bad_request"
    elif status >= 500:
        kind = "server"
    else:
        kind = "protocol"

    if status in (429, 503, 529):  # overloaded servers send Retry-After too
        retry_after = retry_after_seconds(headers, parsed)
    passed = rate_limit_headers(headers)
    if retry_after is not None and "retry-after" not in passed:
        # Google says it in the body only; the client gets it the HTTP way.
        passed["retry-after"] = str(max(1, math.ceil(retry_after)))

    reason = f": {_clean(upstream_msg, conn.api_key, _MAX_MESSAGE)}" if upstream_msg else ""
    return UpstreamError(
        f"{conn.name} ({conn.provider}) returned HTTP {status}{reason}",
        kind=kind,
        status=status,
        retry_after=retry_after,
        provider=conn.name,
        body=_clean(text, conn.api_key, _MAX_BODY) if text else None,
        headers=passed,
        rate_limit_scope="connection" if _account_wide(code) else "model",
    )


# The upstream's rate-limit headers, passed on to the client with an error it caused.
_RATE_LIMIT_HEADER_RE = re.compile(
    r"retry-after(-ms)?|x-ratelimit-.+|anthropic-ratelimit-.+", re.IGNORECASE
)


def rate_limit_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``retry-after``/``retry-after-ms``, ``x-ratelimit-*`` and ``anthropic-ratelimit-*``."""
    return {k.lower(): v for k, v in headers.items() if _RATE_LIMIT_HEADER_RE.fullmatch(k)}


def _account_wide(code: str) -> bool:
    """Whether a 429 limits the whole account rather than one model: OpenAI (and the
    OpenAI-compatible servers that copy it) say ``insufficient_quota`` when the billing quota
    is spent. Other vendors' 429s are per model, as their rate limits are."""
    return "insufficient_quota" in code.lower()


# ---------------------------------------------------------------------- Retry-After


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(value: str) -> float | None:
    """``30``, ``1.5``, ``20ms``, ``6m0s``, ``1h2m3.5s`` (OpenAI's x-ratelimit-reset-*) or a
    Google ``"37s"``/``"0.5s"`` retryDelay, in seconds."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION_RE.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value.replace(" ", ""):
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


def _parse_when(value: str) -> float | None:
    """An HTTP-date (Retry-After) or RFC 3339 timestamp (anthropic-ratelimit-*-reset) as
    seconds from now."""
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return max(0.0, when - time.time())


def retry_after_seconds(headers: Mapping[str, str], body: Any = None) -> float | None:
    """How long the upstream asked us to wait, from the most precise signal it gave."""
    lower = {k.lower(): v for k, v in headers.items()}
    if (ms := lower.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    if (ra := lower.get("retry-after")) is not None:
        seconds = parse_duration(ra)
        if seconds is None:
            seconds = _parse_when(ra)
        if seconds is not None:
            return seconds
    # Google puts a RetryInfo detail in the body.
    details = _get(body[0] if isinstance(body, list) and body else body, "error", "details")
    if isinstance(details, list):
        for detail in details:
            delay = detail.get("retryDelay") if isinstance(detail, dict) else None
            if isinstance(delay, str) and (seconds := parse_duration(delay)) is not None:
                return seconds
    # Per-window resets: the longest one is when every limit has room again.
    resets: list[float] = []
    for name, value in lower.items():
        if name.startswith("x-ratelimit-reset"):
            seconds = parse_duration(value)
        elif name.startswith("anthropic-ratelimit-") and name.endswith("-reset"):
            seconds = _parse_when(value)
        else:
            continue
        if seconds is not None:
            resets.append(seconds)
    return max(resets) if resets else None


# ---------------------------------------------------------------------- registry


# Filled by router/providers/__init__.py with one provider per kind. Importing any module of
# this package runs that first, so the registry is complete before anything can ask it; the
# kinds import this module, never the other way round.
_REGISTRY: dict[str, Provider] = {}


def register(provider: Provider) -> None:
    _REGISTRY[provider.kind] = provider


def get_provider(kind: str) -> Provider:
    """The provider for a kind; BadRequest for an unknown one."""
    provider = _REGISTRY.get(kind)
    if provider is None:
        raise BadRequest(
            f"unknown provider kind '{kind}' (expected one of {', '.join(PROVIDER_KINDS)})"
        )
    return provider


def forwarded_headers(kind: str, client: Mapping[str, str], *, same_format: bool) -> dict[str, str]:
    """The client request headers a ``kind`` upstream gets (its allowlist; never auth)."""
    return get_provider(kind).forwarded_headers(client, same_format=same_format)


def call_format(conn: ProviderConnection, inbound_format: str) -> str:
    """The wire format a call from an ``inbound_format`` client is sent to ``conn`` in."""
    return get_provider(conn.provider).call_format(conn, inbound_format)


def responses_by_default(kind: str, url: str) -> bool:
    return get_provider(kind).responses_by_default(url)


def provider_format(kind: str) -> str:
    """The wire format a provider kind's generation endpoint speaks (``openai`` -> ``openai-chat``)."""
    return get_provider(kind).format
