"""Capture addon: decides per connection what is decrypted (bypass, TLS intercept off) and
tags each flow (source, agent) for the recorder. Refuses proxying into llmtap's own API."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from mitmproxy import http, tls
from mitmproxy.addonmanager import Loader
from mitmproxy.proxy import layers, mode_specs
from mitmproxy.proxy.layer import NextLayer
from mitmproxy.proxy.layers.tls import ServerTLSLayer

from addons.recorder import META_AGENT, META_CUSTOM_KIND, META_SKIP, META_SOURCE
from router.bridge.agents import AgentCatalog
from router.providers import ROUTER_MARKER_HEADER, ROUTER_MARKER_VALUE

log = logging.getLogger("llmtap.capture")

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"})


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
        if req.host.lower() in LOOPBACK_NAMES and req.port == self.api_port():
            # A proxied client must not reach the management API "from loopback".
            flow.metadata[META_SKIP] = True
            flow.response = http.Response.make(
                403,
                json.dumps(
                    {
                        "error": {
                            "message": "llmtap does not proxy requests to its own API port",
                            "type": "permission_error",
                        }
                    }
                ),
                {"content-type": "application/json"},
            )
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
