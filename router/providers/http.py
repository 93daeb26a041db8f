"""The upstream call API the router engine uses (:func:`open_call`, :class:`UpstreamCall`,
:func:`list_models`) on the one shared ``aiohttp.ClientSession`` of
:mod:`router.providers.session`, with first-byte and idle timeouts and typed errors.

Why aiohttp and not httpx here: profiled per routed call, httpx + httpcore + h11 + anyio were
about 40% of the router's CPU; aiohttp's client (already the server we run) costs a fraction.
httpx stays where a blocking or simple client fits (the CLI, tests). The session is created by
the composition root and closed with the app (``cleanup_ctx``); nothing here owns a lifetime.

Timeouts: the session carries only the connect timeout. The first-byte timeout (request sent ->
response headers) and the idle timeout (between two body chunks) are enforced with
``asyncio.timeout`` around exactly those awaits, because a socket read timeout is one number
for every read and cannot tell "the model is thinking" from "the stream stalled".
TCP_NODELAY: aiohttp sets it on every connection it makes (``BaseProtocol.connection_made``),
so a request's headers and body are never held back by Nagle.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any, Self

import aiohttp

from router import jsonfast
from router.errors import UpstreamError, UpstreamKind
from router.providers.base import Provider, get_provider
from router.providers.session import (
    PENDING_ROOTS,
    ROUTER_MARKER_HEADER,
    ROUTER_MARKER_VALUE,
    proxy_for,
    trusted,
)
from router.store.records import ProviderConnection

DEFAULT_FIRST_BYTE_TIMEOUT = 120.0
DEFAULT_IDLE_TIMEOUT = 120.0
DEFAULT_MAX_RESPONSE_BYTES = 32 << 20
_MAX_ERROR_BODY = 1024 * 1024

# Never taken from a caller's extra headers: transport framing is the client's, credentials
# are the connection's, and the marker must always be ours.
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "authorization", "x-api-key",
     "x-goog-api-key", ROUTER_MARKER_HEADER}
)  # fmt: skip

# ---------------------------------------------------------------------- transport errors


def map_transport_error(
    exc: BaseException, conn: ProviderConnection, *, phase: str
) -> UpstreamError:
    """A transport failure as a typed error with a one-line message (no traceback, no key)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    kind: UpstreamKind
    if isinstance(exc, TimeoutError):  # aiohttp's ServerTimeoutError is one too
        kind = "timeout"
        what = f"timed out {phase}"
    elif isinstance(exc, aiohttp.ClientResponseError) or _is_decoding_error(exc):
        # Not an HTTP status (we never raise_for_status): a response we could not parse.
        kind = "protocol"
        what = f"protocol error {phase}: {_describe(exc)}"
    else:
        kind = "connection"
        verify = _verify_error(exc)
        if verify is not None:
            reason = verify.verify_message or "certificate verify failed"
            what = (
                f"TLS verification failed {phase} ({reason}); if a corporate proxy re-signs "
                "TLS, configure its CA as the upstream CA"
            )
        else:
            what = f"connection failed {phase}: {_describe(exc)}"
    message = f"{conn.name} ({conn.provider}) {what}"
    if conn.api_key:
        message = message.replace(conn.api_key, "***")
    return UpstreamError(message, kind=kind, provider=conn.name)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientResponseError):
        return exc.message or type(exc).__name__
    return str(exc) or type(exc).__name__


def _is_decoding_error(exc: BaseException) -> bool:
    """A body whose content-encoding does not decode (aiohttp wraps it in a payload error)."""
    return isinstance(exc, aiohttp.ClientPayloadError) and "content-encoding" in str(exc).lower()


def _verify_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        # aiohttp's certificate error also subclasses ssl's: unwrap it first.
        if isinstance(current, aiohttp.ClientConnectorCertificateError):
            current = current.certificate_error
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


# Everything a send can raise short of a bug: our deadline (TimeoutError), aiohttp's errors,
# socket errors it lets through (a bad port), and ValueError for a URL it refuses
# (aiohttp.InvalidURL is one).
_SEND_ERRORS = (
    TimeoutError,
    aiohttp.ClientError,
    OSError,
    OverflowError,
    ValueError,
    ExceptionGroup,
)


def _send_error(
    exc: BaseException, conn: ProviderConnection, timed_out: str, phase: str
) -> UpstreamError:
    """A failed send: the deadline's own message when it ran out, else the transport error."""
    if isinstance(exc, TimeoutError):
        return UpstreamError(
            f"{conn.name} ({conn.provider}) {timed_out}", kind="timeout", provider=conn.name
        )
    return map_transport_error(exc, conn, phase=phase)


# ---------------------------------------------------------------------- one call


class UpstreamCall:
    """An upstream response whose headers have arrived and whose status is 2xx. Read it once:
    :meth:`read_json` for a JSON body, or :meth:`chunks` for the raw (content-decoded) bytes.
    ``headers`` is a case-insensitive mapping of the response headers."""

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        conn: ProviderConnection,
        *,
        idle_timeout: float,
        max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self._response = response
        self._conn = conn
        self.idle_timeout = idle_timeout
        self.max_bytes = max_bytes

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive. Raises UpstreamError(timeout) when the upstream is silent
        for ``idle_timeout``, UpstreamError(connection) when the stream breaks. Leaving early,
        by break, error or task cancellation, closes the upstream connection."""
        content = self._response.content
        try:
            while True:
                try:
                    async with asyncio.timeout(self.idle_timeout):
                        chunk = await content.readany()
                except TimeoutError as exc:
                    raise UpstreamError(
                        f"{self._conn.name} ({self._conn.provider}) sent nothing for "
                        f"{self.idle_timeout:g}s mid-response",
                        kind="timeout",
                        provider=self._conn.name,
                    ) from exc
                except (aiohttp.ClientError, OSError) as exc:
                    raise map_transport_error(exc, self._conn, phase="mid-response") from exc
                if not chunk:
                    return
                yield chunk
        finally:
            # Closing (not releasing) a half-read response drops the socket: that is what tells
            # the upstream to stop generating. A fully read one goes back to the pool.
            await self.aclose()

    async def read(self) -> bytes:
        """The whole body, refused (UpstreamError, a 502) past ``max_bytes``: a runaway or
        hostile upstream must not be able to take the process's memory."""
        declared = self._response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self.aclose()
            raise self._too_large()
        content = self._response.content
        if content.is_eof():
            # The whole body came with the headers (most replies): take it as it is, without
            # a timer or a wait per chunk.
            whole = content.read_nowait()
            await self.aclose()
            if len(whole) > self.max_bytes:
                raise self._too_large()
            return whole
        parts: list[bytes] = []
        size = 0
        async for chunk in self.chunks():
            size += len(chunk)
            if size > self.max_bytes:
                parts.clear()
                await self.aclose()
                raise self._too_large()
            parts.append(chunk)
        return b"".join(parts)

    def _too_large(self) -> UpstreamError:
        return UpstreamError(
            f"{self._conn.name} ({self._conn.provider}) sent a reply larger than "
            f"{self.max_bytes / (1 << 20):g} MiB (LLMTAP_MAX_RESPONSE_MB)",
            kind="protocol",
            provider=self._conn.name,
        )

    async def read_json(self) -> dict[str, Any]:
        raw = await self.read()
        try:
            value = jsonfast.loads(raw)
        except ValueError as exc:
            raise UpstreamError(
                f"{self._conn.name} ({self._conn.provider}) returned a body that is not JSON "
                f"({self.headers.get('content-type', 'no content-type')})",
                kind="protocol",
                status=None,
                provider=self._conn.name,
            ) from exc
        if not isinstance(value, dict):
            raise UpstreamError(
                f"{self._conn.name} ({self._conn.provider}) returned JSON that is not an object",
                kind="protocol",
                provider=self._conn.name,
            )
        return value

    async def aclose(self) -> None:
        response = self._response
        if response.content.at_eof():
            response.release()
        else:
            response.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def build_headers(
    conn: ProviderConnection, *, stream: bool, extra_headers: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Defaults < the caller's extra headers (e.g. a forwarded ``anthropic-beta``) < auth and
    the router marker, which no caller can override."""
    provider = get_provider(conn.provider)
    headers = provider.default_headers(stream=stream)
    for name, value in (extra_headers or {}).items():
        if name.lower() not in _RESERVED_HEADERS:
            headers[name.lower()] = value
    headers.update(provider.auth_headers(conn))
    headers[ROUTER_MARKER_HEADER] = ROUTER_MARKER_VALUE
    return headers


async def open_call(
    client: aiohttp.ClientSession,
    conn: ProviderConnection,
    model: str,
    body: Mapping[str, Any] | bytes,
    *,
    stream: bool,
    api_format: str | None = None,
    first_byte_timeout: float = DEFAULT_FIRST_BYTE_TIMEOUT,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    extra_headers: Mapping[str, str] | None = None,
) -> UpstreamCall:
    """Send one generation request and wait for its response headers.

    ``body`` is already rendered in the provider's format (model included where the format
    puts it there) and is sent as is; bytes go out byte for byte. A non-2xx status is read and
    raised as the mapped :class:`UpstreamError`; transport failures likewise, ``from`` the
    aiohttp exception. The caller owns the returned call and must close it (async with)."""
    url, headers = call_head(
        conn, model, stream=stream, api_format=api_format, extra_headers=extra_headers
    )
    content = bytes(body) if isinstance(body, bytes) else jsonfast.dumps(body)
    if PENDING_ROOTS:
        await trusted(client)
    try:
        async with asyncio.timeout(first_byte_timeout):
            proxy, proxy_auth = proxy_for(client, url)
            response = await client.request(
                "POST",
                url,
                data=content,
                headers=headers,
                allow_redirects=False,
                proxy=proxy,
                proxy_auth=proxy_auth,
            )
    except _SEND_ERRORS as exc:
        raise _send_error(
            exc, conn, f"sent no response within {first_byte_timeout:g}s", "before the response"
        ) from exc
    if 200 <= response.status < 300:
        return UpstreamCall(response, conn, idle_timeout=idle_timeout, max_bytes=max_response_bytes)
    raise await _error_from(get_provider(conn.provider), conn, response, idle_timeout)


def call_head(
    conn: ProviderConnection,
    model: str,
    *,
    stream: bool,
    api_format: str | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, str]]:
    """The URL and headers (:func:`build_headers`) of a generation request: a function of the
    connection, model, stream flag, format and extra headers alone, so built once per set of
    them, not once per call. The headers are shared: read them, never change them."""
    key = (
        conn.id, conn.provider, conn.url, conn.api_key, model, stream, api_format,
        tuple(extra_headers.items()) if extra_headers else (),
    )  # fmt: skip
    head = _HEADS.get(key)
    if head is None:
        url = get_provider(conn.provider).call_url(
            conn, model, stream=stream, api_format=api_format
        )
        head = (url, build_headers(conn, stream=stream, extra_headers=extra_headers))
        if len(_HEADS) >= _MAX_HEADS:
            _HEADS.clear()
        _HEADS[key] = head
    return head


# (connection id, kind, url, key, model, stream, format, extra headers) -> (url, headers)
_HEADS: dict[tuple[Any, ...], tuple[str, dict[str, str]]] = {}
_MAX_HEADS = 256


async def _error_from(
    provider: Provider,
    conn: ProviderConnection,
    response: aiohttp.ClientResponse,
    idle_timeout: float,
) -> UpstreamError:
    body = b""
    try:
        async with asyncio.timeout(idle_timeout):
            while len(body) < _MAX_ERROR_BODY:
                chunk = await response.content.readany()
                if not chunk:
                    break
                body += chunk
    except (TimeoutError, aiohttp.ClientError, OSError):
        pass  # the status alone still says what went wrong
    finally:
        response.close()
    return provider.map_error(conn, response.status, response.headers, body)


async def list_models(
    client: aiohttp.ClientSession,
    conn: ProviderConnection,
    *,
    timeout: float = 30.0,
    max_pages: int = 20,
) -> list[str]:
    """The model ids the connection offers (Gemini's ``models/x`` names come back as ``x``)."""
    provider = get_provider(conn.provider)
    headers = build_headers(conn, stream=False)
    del headers["content-type"]
    if PENDING_ROOTS:
        await trusted(client)
    models_url = provider.models_url(conn)
    proxy, proxy_auth = proxy_for(client, models_url)
    models: list[str] = []
    params: dict[str, str] = {}
    for _ in range(max_pages):
        try:
            async with (
                asyncio.timeout(timeout),
                client.get(
                    models_url, params=params, headers=headers, proxy=proxy, proxy_auth=proxy_auth
                ) as response,
            ):
                status, resp_headers, raw = response.status, response.headers, await response.read()
        except _SEND_ERRORS as exc:
            raise _send_error(
                exc, conn, f"did not list its models within {timeout:g}s", "listing models"
            ) from exc
        if not 200 <= status < 300:
            raise provider.map_error(conn, status, resp_headers, raw)
        try:
            page, cursor = provider.parse_models(jsonfast.loads(raw))
        except ValueError as exc:
            raise UpstreamError(
                f"{conn.name} ({conn.provider}) returned a model list that is not JSON",
                kind="protocol",
                provider=conn.name,
            ) from exc
        models.extend(m for m in page if m not in models)
        if not cursor:
            break
        params = provider.next_models_params(cursor)
    return models
