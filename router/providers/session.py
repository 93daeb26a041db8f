"""The shared upstream session: its TLS context (the system's roots, loaded off the start-up
path, plus the upstream CA), the environment's proxies read once, and :func:`make_client`.

The session carries only the connect timeout; the call API in :mod:`router.providers.http`
enforces the first-byte and idle timeouts around exactly those awaits.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
import weakref
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives.serialization import Encoding
from yarl import URL

from certs.upstream import UpstreamCAError, validate_upstream_ca
from router import jsonfast
from router.errors import BadRequest, FieldError

ROUTER_MARKER_HEADER = "x-llmtap-origin"
ROUTER_MARKER_VALUE = "router"
DEFAULT_CONNECT_TIMEOUT = 10.0

# The session type every caller passes around (one per process).
UpstreamSession = aiohttp.ClientSession


def load_upstream_ca(path: Path) -> str:
    """The PEM text of an upstream CA bundle, validated by :mod:`certs.upstream` (exists,
    readable, at least one PEM certificate). Raises :class:`BadRequest` naming what is wrong."""
    try:
        ca = validate_upstream_ca(path)
    except UpstreamCAError as exc:
        raise BadRequest(str(exc), [FieldError("upstreamCa", str(exc))]) from exc
    return "".join(c.public_bytes(Encoding.PEM).decode() for c in ca.certificates)


def upstream_ssl_context(upstream_ca: Path | None = None) -> ssl.SSLContext:
    """The system's default roots, plus the upstream CA when given (added, never replacing)."""
    ctx = _bare_context(upstream_ca)
    _load_system_roots(ctx)
    return ctx


def _bare_context(upstream_ca: Path | None) -> ssl.SSLContext:
    """A verifying client context holding only the upstream CA (validated now): the system's
    roots are added by :func:`_load_system_roots`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, hostnames checked
    keylog = os.environ.get("SSLKEYLOGFILE")  # as ssl.create_default_context honours it
    if keylog and not sys.flags.ignore_environment:
        ctx.keylog_filename = keylog
    if upstream_ca is not None:
        ctx.load_verify_locations(cadata=load_upstream_ca(upstream_ca))
    return ctx


def _load_system_roots(ctx: ssl.SSLContext) -> None:
    ctx.load_default_certs()
    paths = ssl.get_default_verify_paths()
    if not (paths.cafile or paths.capath) and ctx.cert_store_stats()["x509_ca"] == 0:
        # No system store at all (some minimal images, python.org builds on macOS): fall back to
        # the Mozilla bundle rather than trusting nothing.
        import certifi

        ctx.load_verify_locations(cafile=certifi.where())


class _Roots:
    """The system roots of a session's SSL context, loaded once in a worker thread: parsing a
    few hundred certificates is kept off the start-up path (the composition root calls
    :func:`preload_trust` once serving), and a call that comes first waits for them."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx
        self.future: asyncio.Future[None] | None = None

    def ensure(self) -> asyncio.Future[None]:
        if self.future is None:
            loop = asyncio.get_running_loop()
            self.future = loop.run_in_executor(None, _load_system_roots, self.ctx)
        return self.future


# Sessions whose roots a call has not yet seen loaded: empty (falsy) once all have, which is
# the only check left on a call's path.
PENDING_ROOTS: weakref.WeakKeyDictionary[aiohttp.ClientSession, _Roots] = (
    weakref.WeakKeyDictionary()
)


def preload_trust(client: aiohttp.ClientSession | None) -> None:
    """Start loading the session's system roots now (in a worker thread), if not yet done."""
    roots = PENDING_ROOTS.get(client) if client is not None else None
    if roots is not None:
        roots.ensure()


async def trusted(client: aiohttp.ClientSession) -> None:
    """Wait until the session's system roots are loaded (callers check :data:`PENDING_ROOTS`
    first: once every session is loaded, a call skips this await entirely)."""
    roots = PENDING_ROOTS.get(client)
    if roots is None:
        return
    loading = roots.ensure()
    if not loading.done():
        await asyncio.shield(loading)
    else:
        loading.result()  # a failed load fails every call that needs it, never silently
        del PENDING_ROOTS[client]  # loaded: later calls skip the lookup


def make_client(
    *,
    upstream_ca: Path | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    trust_env: bool = True,
    keepalive_timeout: float = 30.0,
) -> aiohttp.ClientSession:
    """The one session every upstream call shares: pooled, every request tagged with the router
    marker so the capture layer skips it. Must be created inside the running loop; the caller
    closes it (``await session.close()``, or ``async with``). HTTP/1.1 only (aiohttp has no
    HTTP/2 client); upstream APIs all speak it. The upstream CA is validated now; the system's
    roots load in a worker thread (see :class:`_Roots`)."""
    ctx = _bare_context(upstream_ca)  # validates the CA before any socket exists
    # Streams last minutes, so the pool must not cap open connections (per-connection
    # concurrency is the router's semaphore); keep-alive only bounds idle sockets.
    connector = aiohttp.TCPConnector(
        ssl=ctx, limit=0, limit_per_host=0, keepalive_timeout=keepalive_timeout
    )
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout),
        trust_env=False,  # read once here instead (_EnvProxies)
        headers={ROUTER_MARKER_HEADER: ROUTER_MARKER_VALUE, "user-agent": "llmtap"},
        json_serialize=jsonfast.dumps_str,
    )
    PENDING_ROOTS[session] = _Roots(ctx)
    if trust_env:
        proxies = _EnvProxies.read()
        if proxies.by_scheme:
            _PROXIES[session] = proxies
    return session


class _EnvProxies:
    """The environment's proxies (``HTTP(S)_PROXY``, ``NO_PROXY``; credentials from the URL
    or ~/.netrc), read once per session. aiohttp's own ``trust_env`` reads them again, and
    ~/.netrc, on every request, each in a worker-thread hop: two thread round trips added to
    every upstream call's latency."""

    def __init__(self, by_scheme: dict[str, tuple[URL, aiohttp.BasicAuth | None]]) -> None:
        self.by_scheme = by_scheme
        self._hosts: dict[tuple[str, str], tuple[URL | None, aiohttp.BasicAuth | None]] = {}

    @classmethod
    def read(cls) -> _EnvProxies:
        from aiohttp.helpers import proxies_from_env

        found = proxies_from_env()
        return cls({scheme: (info.proxy, info.proxy_auth) for scheme, info in found.items()})

    def for_url(self, url: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
        scheme, _, rest = url.partition("://")
        host = rest.partition("/")[0]
        key = (scheme, host)
        hit = self._hosts.get(key)
        if hit is None:
            from urllib.request import proxy_bypass

            proxy = self.by_scheme.get(scheme)
            bypass = proxy is None or proxy_bypass(host.rpartition("@")[2])
            hit = self._hosts[key] = (None, None) if bypass or proxy is None else proxy
        return hit


_PROXIES: weakref.WeakKeyDictionary[aiohttp.ClientSession, _EnvProxies] = (
    weakref.WeakKeyDictionary()
)


def proxy_for(
    client: aiohttp.ClientSession, url: str
) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """The proxy (and its credentials) the environment names for ``url``, or none."""
    proxies = _PROXIES.get(client) if _PROXIES else None
    return proxies.for_url(url) if proxies is not None else (None, None)
