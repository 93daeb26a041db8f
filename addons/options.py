"""llmtap's mitmproxy options, declared once (like mitmproxy's own ``core`` addon) so each
addon reads ``ctx.options`` and reacts in ``configure(updated)`` without importing another
addon. The composition root and the capture-mode controller set them at runtime."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from mitmproxy import ctx
from mitmproxy.addonmanager import Loader
from mitmproxy.proxy import mode_specs


def own_ports(options: Any, servers: Iterable[Any] = ()) -> frozenset[int]:
    """The ports this process listens on (no process-table scan): the API's bound port, every
    capture listener's configured port, and the ports mitmproxy's listeners really bound
    (``servers``), which is the only place a listener configured with port 0 shows its port."""
    ports = {options.llmtap_api_port}
    for spec in options.mode:
        try:
            ports.add(mode_specs.ProxyMode.parse(spec).listen_port() or 0)
        except ValueError:
            continue
    for instance in servers:
        for addr in instance.listen_addrs:
            ports.add(int(addr[1]))
    return frozenset(ports - {0})


def proxy_servers() -> Iterable[Any]:
    """mitmproxy's listener instances (``proxyserver.servers``); none outside a master."""
    master = getattr(ctx, "master", None)
    proxyserver = master.addons.get("proxyserver") if master is not None else None
    return proxyserver.servers if proxyserver is not None else ()


def watch_listeners(callback: Callable[[], None]) -> None:
    """Call ``callback`` after mitmproxy's listeners changed (started, bound, stopped): the
    servers' own signal, as mitmweb uses it. Held weakly, like every mitmproxy signal."""
    servers = proxy_servers()
    changed = getattr(servers, "changed", None)
    if changed is not None:
        changed.connect(callback)


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
