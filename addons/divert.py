"""Divert addon: where each tagged flow goes. A mapped agent chat call is rewritten to the
router's own loopback endpoint (mitmproxy has no synthetic streaming response, so the router's
real status, headers and SSE stream come back through the flow), carrying the hop in internal
headers authenticated by the process secret. Everything else passes through to the real
origin: for AgentBridge connections and hosts llmtap may have pointed at itself in the hosts
file, the origin is resolved with dnspython in ``server_connect`` (SNI and Host unchanged,
certificates verified as usual), and a loop back into our own listeners answers 508. The
AgentBridge's non-loopback peers are refused at ``client_connected``."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import uuid
from collections.abc import Callable

from mitmproxy import connection, ctx, exceptions, http, tls
from mitmproxy.proxy import mode_specs, server_hooks

from addons import meta
from addons.options import own_ports, proxy_servers, watch_listeners
from router.bridge import divert
from router.bridge.origin import OriginError, OriginResolver, is_ip, parse_nameservers
from router.netaddr import is_loopback_name
from web.security import is_local_address, is_loopback_peer, self_connect_refusal

log = logging.getLogger("llmtap.divert")

BRIDGE_ORIGIN_PORT = 443  # an agent's real host is reached on 443 whatever port we listen on
PROBE_TIMEOUT_S = 10.0  # per address, when an origin has several and the first may be dead
MAX_PREFERRED = 4096


def is_bridge(client: connection.Client) -> bool:
    return isinstance(client.proxy_mode, mode_specs.ReverseMode)


def _error(status: int, message: str, err_type: str, code: str | None = None) -> http.Response:
    error: dict[str, str] = {"message": message, "type": err_type}
    if code:
        error["code"] = code
    return http.Response.make(
        status, json.dumps({"error": error}), {"content-type": "application/json"}
    )


class Divert:
    def __init__(
        self,
        *,
        secret: str,
        spoofable: Callable[[str], bool] = lambda _host: False,
        counters: divert.BridgeCounters | None = None,
    ) -> None:
        self.secret = secret
        self.spoofable = spoofable
        self.counters = counters or divert.BridgeCounters()
        self.resolver = OriginResolver()
        self._own_ports: frozenset[int] = frozenset()
        # (client connection, host, port) of hops we built: only their server connection may
        # reach our own API (web.security.self_connect_refusal's one exception).
        self._hop_grants: set[tuple[str, str, int]] = set()
        # (host, port) -> the address of it that last accepted a connection
        self._preferred: dict[tuple[str, int], str] = {}

    # ------------------------------------------------------------------ options

    def configure(self, updated: set[str]) -> None:
        if "llmtap_dns_servers" in updated:
            try:
                servers = parse_nameservers(ctx.options.llmtap_dns_servers)
            except ValueError as exc:
                raise exceptions.OptionsError(f"llmtap_dns_servers: {exc}") from exc
            self.resolver = OriginResolver(servers)
        if "mode" in updated or "llmtap_api_port" in updated:
            self._refresh_ports()

    def running(self) -> None:
        # A listener on port 0 has its real port only once bound: follow the servers.
        watch_listeners(self._refresh_ports)
        self._refresh_ports()

    def _refresh_ports(self) -> None:
        self._own_ports = own_ports(ctx.options, proxy_servers())

    # ------------------------------------------------------------------ connections

    def client_connected(self, client: connection.Client) -> None:
        if not is_bridge(client):
            return
        if not self.peer_allowed(client.peername):
            # The bridge answers on loopback only: it decrypts with a CA the user trusts.
            client.error = "AgentBridge refuses clients that are not on loopback"
            log.warning("refused AgentBridge client %s (not loopback)", client.peername)
            return
        self.counters.active += 1

    def client_disconnected(self, client: connection.Client) -> None:
        if self._hop_grants:
            self._hop_grants = {g for g in self._hop_grants if g[0] != client.id}
        if is_bridge(client) and client.error is None:
            self.counters.active = max(0, self.counters.active - 1)

    def peer_allowed(self, peer: tuple[str, int] | None) -> bool:
        return bool(peer) and (ctx.options.llmtap_bridge_allow_remote or is_loopback_peer(peer))

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        # A bypassed AgentBridge connection is tunnelled raw: aim it at the SNI's real origin
        # (resolved in server_connect) instead of the reverse spec's placeholder.
        if data.ignore_connection and is_bridge(data.context.client):
            sni = data.client_hello.sni
            if sni:
                data.context.server.address = (sni, BRIDGE_ORIGIN_PORT)

    # ------------------------------------------------------------------ requests

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None or flow.metadata.get(meta.SKIP):
            return
        try:
            if is_bridge(flow.client_conn):
                self.counters.intercepted += 1
            plan = flow.metadata.get(meta.DIVERT)
            if plan is not None:
                self._hop(flow, plan)
            else:
                await self._passthrough(flow)
        except Exception:
            log.exception("divert failed; the flow passes through unchanged")

    def _hop(self, flow: http.HTTPFlow, plan: tuple[str, str, str | None, str | None]) -> None:
        _fmt, path, target, effort = plan
        api_port = ctx.options.llmtap_api_port
        if not api_port:
            flow.response = _error(503, "llmtap's router is not listening yet", "api_error")
            return
        req = flow.request
        hop = divert.Hop(
            agent=flow.metadata.get(meta.AGENT, ""),
            source=flow.metadata.get(meta.SOURCE, "http-proxy"),
            request_id=flow.metadata.get(meta.ID) or uuid.uuid4().hex,
            model=target,
            effort=effort,
        )
        query = req.path.partition("?")[2]
        for name in divert.CREDENTIAL_HEADERS:
            req.headers.pop(name, None)
        agent_host = req.host_header
        req.scheme = "http"
        req.host = ctx.options.llmtap_api_host
        req.port = api_port
        if agent_host:  # the router records a diverted WebSocket's calls under the agent's host
            req.host_header = agent_host
        self._hop_grants.add((flow.client_conn.id, req.host, api_port))
        req.path = f"{path}?{query}" if query else path
        for name, value in hop.headers(self.secret).items():
            req.headers[name] = value

    async def _passthrough(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        bridge = is_bridge(flow.client_conn)
        if bridge:
            # The reverse spec names a placeholder; the real origin is the agent's own host.
            host = req.host_header or flow.client_conn.sni
            if not host:
                flow.response = _error(400, "no Host header and no SNI", "invalid_request_error")
                return
            name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
            req.host = name.strip("[]")  # keeps the Host header the client sent
            req.port = BRIDGE_ORIGIN_PORT
            if req.host_header != host:
                req.host_header = host
        host = req.host.lower().rstrip(".")
        if not self._resolves_itself(bridge, host):
            return  # literals (refused by capture when ours) and names mitmproxy resolves
        port = ctx.options.llmtap_origin_port or req.port
        try:
            addresses = await self.resolver.resolve(host)
        except OriginError as exc:
            flow.response = _error(502, str(exc), "api_error", "origin_unresolved")
            return
        if any(self._loops(a, port) for a in addresses):
            flow.response = self._loop(host, port)

    def _resolves_itself(self, bridge: bool, host: str) -> bool:
        """Hosts whose origin llmtap resolves through DNS: everything reaching the bridge, and
        in any mode the hosts llmtap may have pointed at itself in the hosts file."""
        if is_ip(host) or is_loopback_name(host):
            return False
        return bridge or self.spoofable(host)

    def _loops(self, address: str, port: int) -> bool:
        return port in self._own_ports and is_local_address(address)

    @staticmethod
    def _loop(host: str, port: int) -> http.Response:
        return _error(
            508,
            f"{host}:{port} resolves to llmtap itself; refusing to loop (check the DNS "
            "servers llmtap uses for real origins)",
            "api_error",
            "loop_detected",
        )

    # ------------------------------------------------------------------ upstream

    async def _reachable(self, name: str, addresses: list[str], port: int) -> str | OriginError:
        """The first of the origin's addresses (A, then AAAA, in DNS order) that accepts a
        connection, like a system resolver's client would try them. A lone address is
        mitmproxy's to connect (and report); the one that answered is remembered for the
        next connections until a connect to it fails (``server_connect_error``)."""
        if len(addresses) == 1:
            return addresses[0]
        known = self._preferred.get((name, port))
        if known in addresses:
            return known
        failures: list[str] = []
        for address in addresses:
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(address, port), PROBE_TIMEOUT_S
                )
            except (OSError, TimeoutError) as exc:
                failures.append(f"{address}: {getattr(exc, 'strerror', None) or 'timed out'}")
                continue
            writer.close()
            if len(self._preferred) >= MAX_PREFERRED:
                self._preferred.clear()
            self._preferred[(name, port)] = address
            return address
        return OriginError(
            f"cannot connect to {name}:{port} at any address ({'; '.join(failures)})"
        )

    def server_connect_error(self, data: server_hooks.ServerConnectionHookData) -> None:
        # The remembered address stopped answering: the next connection tries them all again.
        if data.server.address is not None:
            address, port = data.server.address
            self._preferred = {
                k: v for k, v in self._preferred.items() if v != address or k[1] != port
            }

    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        server = data.server
        if server.address is None or server.error:
            return
        host, port = server.address
        name = host.lower().rstrip(".")
        hop = (data.client.id, host, port) in self._hop_grants
        if self._resolves_itself(is_bridge(data.client), name):
            try:
                addresses: list[str] = list(await self.resolver.resolve(name))
            except OriginError as exc:
                server.error = str(exc)
                return
            port = ctx.options.llmtap_origin_port or port
            looping = [a for a in addresses if self._loops(a, port)]
            if looping:
                server.error = f"{host} resolves to llmtap itself ({looping[0]}:{port})"
                return
            address = await self._reachable(name, addresses, port)
            if isinstance(address, OriginError):
                server.error = str(address)
                return
            if server.sni is None and server.tls:
                server.sni = host
            # SNI (and certificate verification against it) stays the host name; only the
            # address is the one DNS gave, never the hosts file's.
            server.address = (address, port)
            return
        # Everything else connects where the system resolves it: decide on that address, not
        # on how the name is spelled (127.1, [::ffff:127.0.0.1], a name for this machine).
        if is_ip(name):
            addresses = [name]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except (OSError, UnicodeError):
                return  # unresolvable: mitmproxy's own connect fails and reports it
            addresses = [str(info[4][0]) for info in infos]
        reason = self_connect_refusal(addresses, port, self._own_ports, hop_authenticated=hop)
        if reason is not None:
            server.error = reason
