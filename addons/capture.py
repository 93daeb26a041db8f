"""Capture addon: decides per connection what is decrypted (bypass, TLS intercept off) and
tags each flow (source, agent) for the recorder. Refuses proxying into llmtap's own API."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable
from typing import Any

from mitmproxy import http, tls
from mitmproxy.addonmanager import Loader
from mitmproxy.proxy import layers, mode_specs, server_hooks
from mitmproxy.proxy.layer import NextLayer
from mitmproxy.proxy.layers.tls import ServerTLSLayer

from addons.recorder import META_AGENT, META_CUSTOM_KIND, META_SKIP, META_SOURCE
from router.bridge.agents import AgentCatalog
from router.providers import ROUTER_MARKER_HEADER, ROUTER_MARKER_VALUE
from web.security import is_hop_request, own_listening_ports, self_connect_refusal

log = logging.getLogger("llmtap.capture")


class CaptureTagger:
    def __init__(
        self,
        *,
        api_port: Callable[[], int],
        bypass: Callable[[str], bool],
        tls_intercept: Callable[[], bool],
        system_proxy_active: Callable[[], bool],
        agents: AgentCatalog,
        custom_host: Callable[[str], Any] = lambda _host: None,
    ) -> None:
        self.custom_host = custom_host
        self.api_port = api_port
        self.bypass = bypass
        self.tls_intercept = tls_intercept
        self.system_proxy_active = system_proxy_active
        self.agents = agents
        # (client connection id, host, port) a hop-authenticated request targets: its server
        # connection may then reach our own API (see web.security.self_connect_refusal).
        self._hop_grants: set[tuple[str, str, int]] = set()

    def load(self, loader: Loader) -> None:
        return None

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        # Bypass is decided from the SNI before anything is decrypted: the tunnel stays raw.
        host = data.client_hello.sni or (
            data.context.server.address[0] if data.context.server.address else ""
        )
        if host and self.bypass(host):
            data.ignore_connection = True

    def next_layer(self, nextlayer: NextLayer) -> None:
        # TLS intercept off: a CONNECT tunnel's TLS is relayed as raw TCP (counted by the tunnel
        # recorder, never decrypted) instead of being terminated with our CA.
        if self.tls_intercept() or not isinstance(nextlayer.layer, ServerTLSLayer):
            return
        if isinstance(nextlayer.context.client.proxy_mode, mode_specs.RegularMode):
            nextlayer.layer = layers.TCPLayer(nextlayer.context)

    def request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        if req.headers.get(ROUTER_MARKER_HEADER) == ROUTER_MARKER_VALUE:
            # The router's own upstream call (e.g. through the system proxy): never re-captured.
            flow.metadata[META_SKIP] = True
            return
        if self._refuse_own_target(flow):
            return
        mode = flow.client_conn.proxy_mode
        if isinstance(mode, mode_specs.RegularMode):
            source = "system-proxy" if self.system_proxy_active() else "http-proxy"
        elif isinstance(mode, mode_specs.ReverseMode):
            source = "agent-bridge"
        else:
            source = "http-proxy"
        flow.metadata[META_SOURCE] = source
        custom = self.custom_host(req.pretty_host.lower())
        if custom is not None:  # a custom host's kind wins over detection (inspector.md)
            flow.metadata[META_CUSTOM_KIND] = custom.kind
            if source == "http-proxy":
                flow.metadata[META_SOURCE] = "custom-host"
        agent = self.agents.agent_for_host(req.pretty_host)
        if agent is None:
            agent = self.agents.agent_for_user_agent(req.headers.get("user-agent", ""))
        if agent is not None:
            flow.metadata[META_AGENT] = agent.agent_id

    def _refuse_own_target(self, flow: http.HTTPFlow) -> bool:
        """Per request (a kept-alive server connection is not connected again): a literal
        address of ours is answered 403 here. Names are resolved and checked in
        ``server_connect``, which decides on the address actually connected to."""
        req = flow.request
        hop = is_hop_request(req.headers)
        if hop:
            self._hop_grants.add((flow.client_conn.id, req.host, req.port))
        literal = "127.0.0.1" if req.host.lower().rstrip(".") == "localhost" else req.host
        reason = self_connect_refusal([literal], req.port, self._own_ports, hop_authenticated=hop)
        if reason is None:
            return False
        flow.metadata[META_SKIP] = True
        flow.response = http.Response.make(
            403,
            json.dumps({"error": {"message": reason, "type": "permission_error"}}),
            {"content-type": "application/json"},
        )
        return True

    def _own_ports(self) -> set[int]:
        return {self.api_port(), *own_listening_ports()}

    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        # Decide on what the name resolves to, not on how it is spelled. (A DNS answer that
        # changes between this check and mitmproxy's connect is still stopped by the API's
        # Host check: a rebinding page's requests carry its own host name.)
        if data.server.address is None or data.server.error:
            return
        host, port = data.server.address[0], data.server.address[1]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError):
            return  # unresolvable: mitmproxy's own connect fails and reports it
        addresses = [str(info[4][0]) for info in infos]
        hop = (data.client.id, host, port) in self._hop_grants
        reason = self_connect_refusal(addresses, port, self._own_ports, hop_authenticated=hop)
        if reason is not None:
            data.server.error = reason

    def client_disconnected(self, client: Any) -> None:
        self._hop_grants = {g for g in self._hop_grants if g[0] != client.id}
