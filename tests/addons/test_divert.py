"""The divert addon on its own, with mitmproxy's taddons/tflow: the hop rewrite and its
headers, the AgentBridge peer check, passthrough targets, loops, and origin resolution through
a loopback DNS server in server_connect."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from mitmproxy.proxy import mode_specs, server_hooks
from mitmproxy.test import taddons, tflow, tutils

from addons import meta
from addons.divert import Divert
from addons.options import LlmtapOptions
from router.bridge import divert as hop_mod
from tests.router.bridge.dnsfake import FakeDns

SECRET = "s3cret-for-this-process"
BRIDGE_SPEC = "reverse:https://llmtap-bridge.invalid:443@127.0.0.1:4443"
BRIDGE = mode_specs.ProxyMode.parse(BRIDGE_SPEC)
# Not a network address in use anywhere: TEST-NET-1 (RFC 5737), only a value on a peername.
REMOTE_PEER = ("192.0.2.10", 50000)


@pytest.fixture
def dns() -> Iterator[FakeDns]:
    with FakeDns({"api.anthropic.com": ["127.0.0.1", "::1"], "self.example": ["127.0.0.1"]}) as s:
        yield s


@contextlib.contextmanager
def bridge_divert(dns: FakeDns, **options: Any) -> Iterator[Divert]:
    """A Divert in taddons, with the AgentBridge listening on 4443 and passthrough resolving
    through ``dns``."""
    addon = Divert(secret=SECRET)
    with taddons.context(LlmtapOptions(), addon) as tctx:
        tctx.configure(addon, llmtap_dns_servers=[dns.spec], mode=[BRIDGE_SPEC], **options)
        yield addon


def agent_flow(
    host: str = "api.anthropic.com", path: str = "/v1/messages", mode: Any = None
) -> Any:
    req = tutils.treq(
        host=host, port=443, scheme=b"https", method=b"POST", path=path.encode(),
        content=json.dumps({"model": "claude-x"}).encode(),
    )  # fmt: skip
    req.headers["host"] = host
    req.headers["authorization"] = "Bearer agent-token"
    req.headers["x-api-key"] = "agent-key"
    req.headers["anthropic-version"] = "2023-06-01"
    flow = tflow.tflow(req=req)
    if mode is not None:
        flow.client_conn.proxy_mode = mode
        flow.request.data.host = "llmtap-bridge.invalid"  # what reverse mode sets (Host kept)
    return flow


async def test_hop_rewrites_to_the_router_with_authenticated_headers() -> None:
    addon = Divert(secret=SECRET)
    with taddons.context(LlmtapOptions(), addon) as tctx:
        tctx.options.update(llmtap_api_port=20999)
        flow = agent_flow(path="/v1internal:streamGenerateContent?alt=sse")
        flow.metadata.update(
            {
                meta.ID: "rec-1",
                meta.AGENT: "antigravity",
                meta.SOURCE: "http-proxy",
                meta.DIVERT: ("cloudcode", "/v1internal:streamGenerateContent", "o/m", "low"),
            }
        )
        await addon.request(flow)
        req = flow.request
        assert (req.scheme, req.host, req.port) == ("http", "127.0.0.1", 20999)
        assert req.path == "/v1internal:streamGenerateContent?alt=sse"
        # The agent's credentials for its own provider are gone; its other headers stay.
        assert "authorization" not in req.headers and "x-api-key" not in req.headers
        assert req.headers["anthropic-version"] == "2023-06-01"
        headers = {k.lower(): v for k, v in req.headers.items()}
        assert hop_mod.read_hop(headers, SECRET) == hop_mod.Hop(
            "antigravity", "http-proxy", "rec-1", "o/m", "low"
        )
        assert hop_mod.read_hop(headers, "another-process") is None
        assert flow.response is None


async def test_hop_without_api_port_is_503() -> None:
    addon = Divert(secret=SECRET)
    with taddons.context(LlmtapOptions(), addon):
        flow = agent_flow()
        flow.metadata[meta.DIVERT] = ("anthropic", "/v1/messages", None, None)
        await addon.request(flow)
        assert flow.response.status_code == 503


async def test_bridge_refuses_non_loopback_peers_unless_allowed() -> None:
    counters = hop_mod.BridgeCounters()
    addon = Divert(secret=SECRET, counters=counters)
    with taddons.context(LlmtapOptions(), addon) as tctx:
        local = tflow.tclient_conn()
        local.proxy_mode = BRIDGE
        addon.client_connected(local)
        assert local.error is None and counters.active == 1
        remote = tflow.tclient_conn()
        remote.proxy_mode = BRIDGE
        remote.peername = REMOTE_PEER
        addon.client_connected(remote)
        assert remote.error and "loopback" in remote.error
        assert counters.active == 1
        # The proxy modes are not the bridge's concern here.
        proxied = tflow.tclient_conn()
        proxied.peername = REMOTE_PEER
        addon.client_connected(proxied)
        assert proxied.error is None
        tctx.options.update(llmtap_bridge_allow_remote=True)
        assert addon.peer_allowed(REMOTE_PEER) is True
        addon.client_disconnected(local)
        assert counters.active == 0


async def test_bridge_passthrough_goes_to_the_agents_own_host(dns: FakeDns) -> None:
    counters = hop_mod.BridgeCounters()
    addon = Divert(secret=SECRET, counters=counters)
    with taddons.context(LlmtapOptions(), addon) as tctx:
        tctx.configure(addon, llmtap_dns_servers=[dns.spec])
        flow = agent_flow(mode=BRIDGE)
        await addon.request(flow)
        assert flow.response is None
        assert (flow.request.host, flow.request.port) == ("api.anthropic.com", 443)
        assert flow.request.host_header == "api.anthropic.com"
        assert flow.request.headers["authorization"] == "Bearer agent-token"  # untouched
        assert counters.intercepted == 1


async def test_loop_back_into_our_listeners_is_508(dns: FakeDns) -> None:
    # "The real origin" is our bridge.
    with bridge_divert(dns, llmtap_origin_port=4443) as addon:
        flow = agent_flow(mode=BRIDGE)
        await addon.request(flow)
        assert flow.response.status_code == 508
        assert json.loads(flow.response.content)["error"]["code"] == "loop_detected"
        # Through the HTTP proxy, an agent host whose DNS answer is us loops the same way.
        addon.spoofable = lambda host: host == "api.anthropic.com"
        flow = agent_flow()
        await addon.request(flow)
        assert flow.response.status_code == 508
        # (A literal address of ours is refused earlier, by the capture tagger: 403.)


async def test_server_connect_resolves_spoofable_hosts_with_dns(dns: FakeDns) -> None:
    addon = Divert(secret=SECRET, spoofable=lambda host: host == "api.anthropic.com")
    with (
        taddons.context(LlmtapOptions(), addon) as tctx,
        socket.create_server(("127.0.0.1", 0)) as origin,
    ):
        port = origin.getsockname()[1]
        tctx.configure(addon, llmtap_dns_servers=[dns.spec], llmtap_origin_port=port)
        client = tflow.tclient_conn()  # the HTTP proxy mode
        server = tflow.tserver_conn()
        server.address, server.sni, server.tls = (
            ("api.anthropic.com", 443),
            "api.anthropic.com",
            True,
        )
        await addon.server_connect(server_hooks.ServerConnectionHookData(server, client))
        # The address is DNS's answer (A first), the SNI stays the host name.
        assert server.address == ("127.0.0.1", port)
        assert server.sni == "api.anthropic.com" and server.error is None
        assert dns.queries[("api.anthropic.com", "A")] == 1
        assert dns.queries[("api.anthropic.com", "AAAA")] == 1
        # Cached (TTL 60 s): a second connection asks nobody.
        server2 = tflow.tserver_conn()
        server2.address = ("api.anthropic.com", 443)
        await addon.server_connect(server_hooks.ServerConnectionHookData(server2, client))
        assert server2.address == ("127.0.0.1", port)
        assert dns.queries[("api.anthropic.com", "A")] == 1
        # A host llmtap never spoofs is left to mitmproxy's own resolution.
        other = tflow.tserver_conn()
        other.address = ("example.org", 443)
        await addon.server_connect(server_hooks.ServerConnectionHookData(other, client))
        assert other.address == ("example.org", 443)


async def test_server_connect_tries_each_address_and_remembers_the_live_one() -> None:
    """A dead first address (A) is skipped for the next one that accepts (AAAA here); that
    one is used directly until a connect to it fails, then all are tried again."""
    addon = Divert(secret=SECRET, spoofable=lambda host: host == "api.anthropic.com")
    with (
        socket.create_server(("::1", 0), family=socket.AF_INET6) as origin,
        FakeDns({"api.anthropic.com": ["127.0.0.2", "::1"]}) as dns,
        taddons.context(LlmtapOptions(), addon) as tctx,
    ):
        port = origin.getsockname()[1]
        tctx.configure(addon, llmtap_dns_servers=[dns.spec], llmtap_origin_port=port)
        client = tflow.tclient_conn()

        async def connect() -> Any:
            server = tflow.tserver_conn()
            server.address, server.tls = ("api.anthropic.com", 443), True
            await addon.server_connect(server_hooks.ServerConnectionHookData(server, client))
            return server

        first = await connect()
        assert first.address == ("::1", port) and first.error is None
        origin.accept()[0].close()  # the probe's connection
        again = await connect()
        assert again.address == ("::1", port)  # remembered: no probe this time
        addon.server_connect_error(server_hooks.ServerConnectionHookData(again, client))
        assert addon._preferred == {}
        origin.close()  # now every address is dead
        dead = await connect()
        assert dead.error is not None
        assert "127.0.0.2" in dead.error and "::1" in dead.error, dead.error


async def test_server_connect_errors_for_unresolvable_and_self(dns: FakeDns) -> None:
    with bridge_divert(dns, llmtap_api_port=20999) as addon:
        client = tflow.tclient_conn()
        client.proxy_mode = BRIDGE
        missing = tflow.tserver_conn()
        missing.address = ("nowhere.example", 443)
        await addon.server_connect(server_hooks.ServerConnectionHookData(missing, client))
        assert missing.error and "nowhere.example" in missing.error
        for port in (4443, 20999):  # the bridge itself, and the API without a hop
            own = tflow.tserver_conn()
            own.address = ("127.0.0.1", port)
            await addon.server_connect(server_hooks.ServerConnectionHookData(own, client))
            assert own.error and "own API port or listeners" in own.error
        # ... except the divert hop to our API that this addon built for this client.
        flow = agent_flow()
        flow.client_conn = client
        flow.metadata[meta.DIVERT] = ("anthropic", "/v1/messages", None, None)
        await addon.request(flow)
        hop = tflow.tserver_conn()
        hop.address = (flow.request.host, flow.request.port)
        await addon.server_connect(server_hooks.ServerConnectionHookData(hop, client))
        assert hop.error is None and hop.address == ("127.0.0.1", 20999)
        addon.client_disconnected(client)
        again = tflow.tserver_conn()
        again.address = ("127.0.0.1", 20999)
        await addon.server_connect(server_hooks.ServerConnectionHookData(again, client))
        assert again.error


async def test_bad_dns_servers_option_is_refused() -> None:
    from mitmproxy import exceptions

    addon = Divert(secret=SECRET)
    with taddons.context(LlmtapOptions(), addon) as tctx, pytest.raises(exceptions.OptionsError):
        tctx.configure(addon, llmtap_dns_servers=["dns.example:53"])


async def test_a_diverted_websocket_upgrade_goes_to_the_router_with_the_agents_host() -> None:
    """Codex's Responses WebSocket: the upgrade itself hops to the router (which speaks that
    transport), keeping the agent's Host so the router records its calls under it."""
    addon = Divert(secret=SECRET)
    with taddons.context(LlmtapOptions(), addon) as tctx:
        tctx.options.update(llmtap_api_port=20999)
        flow = agent_flow("api.openai.com", "/v1/responses")
        flow.request.method = "GET"
        flow.request.content = b""
        flow.request.headers.update({"upgrade": "websocket", "connection": "Upgrade"})
        flow.metadata.update(
            {
                meta.ID: "rec-ws",
                meta.AGENT: "codex",
                meta.SOURCE: "http-proxy",
                meta.DIVERT: ("responses", "/v1/responses", "o/m", None),
            }
        )
        await addon.request(flow)
        req = flow.request
        assert flow.response is None
        assert (req.method, req.host, req.port, req.path) == (
            "GET",
            "127.0.0.1",
            20999,
            "/v1/responses",
        )
        assert req.headers["host"] == "api.openai.com"
        assert req.headers["upgrade"] == "websocket"
        headers = {k.lower(): v for k, v in req.headers.items()}
        assert hop_mod.read_hop(headers, SECRET) == hop_mod.Hop(
            "codex", "http-proxy", "rec-ws", "o/m", None
        )
