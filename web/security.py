"""Access control of the management, inspector and agent-bridge API (``/api/...``).

Checks, in order, for every ``/api`` request except the router aliases ``/api/v1...``:

1. the socket peer is loopback (``X-Forwarded-For`` and friends are ignored) -> 403;
2. the ``Host`` header names a loopback host (DNS-rebinding defence), and an ``Origin``
   header, when present, is this server's own origin -> 403;
3. a state-changing request carries proof that no other web page sent it -> 403.
   Accepted proofs: a JSON content type, the management token in ``X-Llmtap-Token``, an
   ``X-Requested-With`` header, or ``Sec-Fetch-Site: same-origin``. Each of these is something
   a cross-site page cannot send without a CORS preflight (which this server never approves)
   or cannot forge at all. A DELETE without a body needs none: DELETE is never a CORS-simple
   method, so a browser cannot send it cross-site without a preflight either. The token
   *cookie* is deliberately not a proof here: the browser attaches it by itself, which is
   exactly what CSRF exploits (and every ``localhost`` port is the same site for cookies);
4. with ``requireLogin`` on, the management token (header ``X-Llmtap-Token`` or the cookie
   ``llmtap_token``) -> 401. ``GET <any UI path>?token=<token>`` sets that cookie and
   redirects to the same URL without the token.

The internal ingest endpoint skips 3 and 4: it has its own token, compared in constant time.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import psutil
from aiohttp import web
from yarl import URL

from router.bridge.divert import H_SECRET
from router.errors import Forbidden, Unauthorized, UnsupportedMediaType
from router.netaddr import is_loopback_name, parse_ip
from web.context import RUNTIME, services

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TOKEN_HEADER = "X-Llmtap-Token"
TOKEN_COOKIE = "llmtap_token"
TOKEN_QUERY = "token"
INGEST_HEADER = "X-Llmtap-Ingest-Token"
INGEST_PATH = "/api/tools/traffic-inspector/internal/ingest"
# The one connection the proxy may open to our own API: the router hop llmtap itself builds
# for a diverted agent call. It proves itself with this per-process secret, which no client
# can know (it never leaves the process).
HOP_HEADER = H_SECRET  # x-llmtap-hop-secret (router/bridge/divert.py names the hop headers)
HOP_SECRET = secrets.token_urlsafe(32)

_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The router API is also served under /api (web/v1.py PREFIXES); it uses router API keys.
_ROUTER_PREFIXES = ("/api/v1/", "/api/v1beta/", "/api/v1internal:")
_ROUTER_EXACT = frozenset({"/api/v1", "/api/v1beta"})


# --------------------------------------------------------------------------- predicates


def is_loopback_peer(peername: Any) -> bool:
    """True for a TCP peer on a loopback address, or a Unix-socket peer (local by nature).
    ``peername`` is what ``transport.get_extra_info("peername")`` returns."""
    if isinstance(peername, (str, bytes)):
        return True  # AF_UNIX: the peer is a local process
    if not isinstance(peername, tuple) or not peername:
        return False
    return _is_loopback_ip(str(peername[0]))


def _is_loopback_ip(text: str) -> bool:
    ip = parse_ip(text)
    return ip is not None and ip.is_loopback


_IFACE_CACHE: tuple[float, frozenset[str]] = (0.0, frozenset())


def _interface_addresses() -> frozenset[str]:
    """This machine's interface addresses (refreshed every few seconds: interfaces change
    rarely, and this is asked on every upstream connect)."""
    global _IFACE_CACHE
    stamp, cached = _IFACE_CACHE
    if time.monotonic() - stamp < 5:
        return cached
    found: set[str] = set()
    try:
        for addrs in psutil.net_if_addrs().values():
            for entry in addrs:
                ip = parse_ip(entry.address)
                if ip is not None:
                    found.add(str(ip))
    except (psutil.Error, OSError):
        pass
    _IFACE_CACHE = (time.monotonic(), frozenset(found))
    return _IFACE_CACHE[1]


def is_local_address(text: str) -> bool:
    """An address that reaches this machine: loopback, the unspecified address (connecting to
    0.0.0.0 or :: lands on localhost), or any interface address; IPv4-mapped forms included."""
    ip = parse_ip(text)
    if ip is None:
        return False
    return ip.is_loopback or ip.is_unspecified or str(ip) in _interface_addresses()


def is_hop_request(headers: Mapping[str, str]) -> bool:
    """The request carries this process's hop secret (see ``HOP_HEADER``)."""
    return tokens_equal(headers.get(HOP_HEADER), HOP_SECRET)


def own_listening_ports() -> set[int]:
    """Every TCP port this process listens on: the API, the proxy listeners, any other."""
    try:
        conns = psutil.Process().net_connections(kind="inet")
    except (psutil.Error, OSError):
        return set()
    return {c.laddr.port for c in conns if c.status == psutil.CONN_LISTEN and c.laddr}


def self_connect_refusal(
    addresses: Iterable[str],
    port: int,
    own_ports: Collection[int] | Callable[[], Collection[int]],
    *,
    hop_authenticated: bool = False,
) -> str | None:
    """Why the proxy must not open a connection to ``port`` on any of ``addresses`` (the
    *resolved* destination), or None. A proxied client reaching one of our own listeners would
    arrive "from loopback" and pass the API's peer check. The one exception is the router hop
    that llmtap itself sets up, proven by the per-process hop secret (``hop_authenticated``)."""
    if hop_authenticated or not any(is_local_address(a) for a in addresses):
        return None
    # Asked only for a local destination: listing our sockets costs a few milliseconds.
    ports = own_ports() if callable(own_ports) else own_ports
    if port in ports:
        return "llmtap does not proxy requests to its own API port or listeners"
    return None


def split_host(host: str) -> tuple[str, int | None]:
    """``host[:port]`` / ``[v6][:port]`` -> (host, port); a malformed port gives ("", None)."""
    host = host.strip()
    if host.startswith("["):
        name, sep, rest = host[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return "", None
        port_text = rest[1:]
    elif host.count(":") == 1:
        name, _, port_text = host.partition(":")
    else:
        name, port_text = host, ""
    if not port_text:
        return name, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return "", None
    return name, int(port_text)


# Every /v1 call asks, with the Host as sent: the verdict is remembered (bounded: any client
# can send any Host).
@lru_cache(maxsize=1024)
def is_loopback_host(host: str | None) -> bool:
    """A ``Host`` header naming this machine: ``localhost`` or a loopback address, any port.
    Anything else may be an attacker's DNS name rebound to 127.0.0.1."""
    if not host:
        return False
    name, _ = split_host(host)
    return bool(name) and is_loopback_name(name)


def is_same_origin(origin: str, host: str) -> bool:
    """``Origin`` equals ``http(s)://<Host>``: the request came from a page of this server."""
    if origin == "null":
        return False
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or parts.path not in ("", "/"):
        return False
    return parts.netloc.lower() == host.strip().lower()


def tokens_equal(given: str | None, expected: str) -> bool:
    """Constant-time comparison (as bytes: compare_digest rejects non-ASCII str)."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def read_or_create_token(path: Path) -> str:
    """The token in ``path``, generated (0600, never overwritten) on first use."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its token
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
    return token


def ingest_token(data_dir: Path) -> str:
    """The token an external capture process sends in ``X-Llmtap-Ingest-Token``."""
    return read_or_create_token(data_dir / "ingest-token")


# --------------------------------------------------------------------------- middleware


def is_protected(path: str) -> bool:
    if path != "/api" and not path.startswith("/api/"):
        return False
    return path not in _ROUTER_EXACT and not path.startswith(_ROUTER_PREFIXES)


def management_token(request: web.Request) -> str:
    runtime = request.app.get(RUNTIME)
    if runtime is None:
        return ""
    token: str = runtime.management_token()
    return token


def _has_json_body(request: web.Request) -> bool:
    return request.content_type == "application/json" or request.content_type.endswith("+json")


def _has_body(request: web.Request) -> bool:
    return bool(request.content_length) or request.headers.get("Transfer-Encoding") is not None


def _check_peer_and_host(request: web.Request) -> None:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if not is_loopback_peer(peer):
        raise Forbidden("this API is only served to local clients")
    host = request.headers.get("Host")
    if not is_loopback_host(host):
        raise Forbidden("the Host header must name a loopback address (localhost, 127.0.0.1)")
    origin = request.headers.get("Origin")
    if origin is not None and not is_same_origin(origin, host or ""):
        raise Forbidden("cross-origin requests are not allowed")


def _check_csrf(request: web.Request, token: Callable[[], str]) -> None:
    if request.method not in _STATE_CHANGING:
        return
    if request.method == "DELETE" and not _has_body(request):
        return
    if _has_json_body(request):
        return
    if request.headers.get("X-Requested-With") or request.headers.get("Sec-Fetch-Site") == (
        "same-origin"
    ):
        return
    if tokens_equal(request.headers.get(TOKEN_HEADER), token()):
        return
    raise Forbidden(
        "a state-changing request needs Content-Type: application/json "
        f"or the {TOKEN_HEADER} header"
    )


def _check_login(request: web.Request, token: Callable[[], str]) -> None:
    given = request.headers.get(TOKEN_HEADER) or request.cookies.get(TOKEN_COOKIE)
    if not tokens_equal(given, token()):
        raise Unauthorized(
            f"login required: send the management token ({TOKEN_HEADER} header or the "
            "cookie set by the start URL; see `llmtap token`)"
        )


def _token_redirect(request: web.Request, token: str) -> NoReturn:
    """``?token=`` on a UI URL: set the cookie and drop the token from the address bar."""
    if not tokens_equal(request.query.get(TOKEN_QUERY), token):
        raise Unauthorized("invalid token")
    query = {k: v for k, v in request.query.items() if k != TOKEN_QUERY}
    target = str(URL.build(path=request.path, query=query or None))
    response = web.HTTPSeeOther(location=target)
    response.set_cookie(
        TOKEN_COOKIE, token, httponly=True, samesite="Strict", path="/", max_age=400 * 86400
    )
    raise response


def is_router_path(path: str) -> bool:
    """The router API: ``/v1...`` and its ``/api/v1...`` aliases."""
    return (
        path.startswith(("/v1/", "/v1beta/", "/v1internal:"))
        or path in ("/v1", "/v1beta")
        or (path in _ROUTER_EXACT or path.startswith(_ROUTER_PREFIXES))
    )


def _check_router_request(request: web.Request, require_api_key: bool) -> None:
    """The router API spends the user's provider keys, so no web page may drive it. SDKs and
    agents send no ``Origin`` and always a JSON body; a page's cross-site "simple" request
    (no preflight) carries a foreign ``Origin`` and/or a text/plain or form body, and a DNS
    rebinding page sends its own name as ``Host``. With router API keys required (the only
    way to listen beyond loopback), the key is the proof and any ``Host`` is fine."""
    host = request.headers.get("Host")
    if is_hop_request(request.headers):
        return  # llmtap's own hop for a diverted agent call: it keeps the agent's Host
    if not require_api_key and not is_loopback_host(host):
        raise Forbidden(
            "the Host header must name a loopback address (localhost, 127.0.0.1); "
            "turn requireApiKey on to serve the router API under another name"
        )
    origin = request.headers.get("Origin")
    if origin is not None and not is_same_origin(origin, host or ""):
        raise Forbidden("cross-origin requests to the router API are not allowed")
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise Forbidden("cross-site requests to the router API are not allowed")
    if request.method in _STATE_CHANGING and not _has_json_body(request):
        raise UnsupportedMediaType(
            "the router API takes JSON bodies: send Content-Type: application/json"
        )


@web.middleware
async def security_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if is_router_path(path):
        _check_router_request(request, services(request).settings.require_api_key)
        return await handler(request)
    if not _needs_checks(request):
        return await handler(request)
    settings = services(request).settings
    # A team gateway serves its management API and UI to the team (behind a load balancer,
    # under any name), so the management token replaces the loopback-only checks; it is
    # required on every /api request, whatever requireLogin says.
    gateway = settings.gateway
    if not gateway:
        _check_peer_and_host(request)
    elif (origin := request.headers.get("Origin")) is not None and not is_same_origin(
        origin, request.headers.get("Host") or ""
    ):
        raise Forbidden("cross-origin requests are not allowed")
    cached: list[str] = []

    def token() -> str:
        if not cached:
            cached.append(management_token(request))
        return cached[0]

    if request.method == "GET" and TOKEN_QUERY in request.query and not is_protected(path):
        _token_redirect(request, token())
    if not is_protected(path) or path == INGEST_PATH:
        return await handler(request)
    _check_csrf(request, token)
    if gateway or settings.require_login:
        _check_login(request, token)
    return await handler(request)


def _needs_checks(request: web.Request) -> bool:
    """``/api`` routes always; UI URLs only for the ``?token=`` start URL."""
    path = request.path
    return is_protected(path) or (
        request.method == "GET"
        and TOKEN_QUERY in request.query
        and not path.startswith(("/api", "/v1"))
    )
