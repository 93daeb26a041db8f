"""llmtap's mitmproxy options, declared once (like mitmproxy's own ``core`` addon) so each
addon reads ``ctx.options`` and reacts in ``configure(updated)`` without importing another
addon. The composition root and the capture-mode controller set them at runtime."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mitmproxy.addonmanager import Loader
from mitmproxy.proxy import mode_specs


def own_ports(options: Any) -> frozenset[int]:
    """The ports this process listens on, from the options (no process-table scan): the API
    and every capture listener (HTTP proxy, AgentBridge)."""
    ports = {options.llmtap_api_port}
    for spec in options.mode:
        try:
            ports.add(mode_specs.ProxyMode.parse(spec).listen_port() or 0)
        except ValueError:
            continue
    return frozenset(ports - {0})


class LlmtapOptions:
    def load(self, loader: Loader) -> None:
        loader.add_option(
            "llmtap_api_host",
            str,
            "127.0.0.1",
            "Address the router hop of a diverted call connects to (llmtap's API).",
        )
        loader.add_option(
            "llmtap_api_port",
            int,
            0,
            "llmtap's API port: diverted calls go there; proxying into it is refused.",
        )
        loader.add_option(
            "llmtap_tls_intercept",
            bool,
            True,
            "Decrypt proxied TLS; off relays CONNECT tunnels as raw TCP (counted, not read).",
        )
        loader.add_option(
            "llmtap_system_proxy",
            bool,
            False,
            "The OS proxy points at llmtap: proxied flows are recorded as system-proxy.",
        )
        loader.add_option(
            "llmtap_bypass",
            Sequence[str],
            [],
            "User bypass patterns (host globs, only '*' special) on top of the defaults: "
            "never decrypted, in every capture mode.",
        )
        loader.add_option(
            "llmtap_dns_servers",
            Sequence[str],
            [],
            "Nameservers (ip or ip:port) that resolve real origins for passthrough; empty: "
            "the system's resolvers. The hosts file is never consulted.",
        )
        loader.add_option(
            "llmtap_origin_port",
            int,
            0,
            "Port of the real origin for passthrough of hosts llmtap resolves itself; 0 keeps "
            "the request's port (443 for the AgentBridge). For tests and non-standard origins.",
        )
        loader.add_option(
            "llmtap_bridge_allow_remote",
            bool,
            False,
            "Let AgentBridge clients that are not on loopback in (refused by default).",
        )
