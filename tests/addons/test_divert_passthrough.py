"""Passthrough to the real origin, end to end: every address DNS gives (A, then AAAA) is tried
in order until one connects, and a loop back into one of our own listeners is refused even
when that listener was configured with port 0 (its port known only once bound)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.addons.agentstack import BRIDGE_API, divert_up
from tests.addons.test_divert_e2e import CASES, call_via_bridge, proxy_client
from tests.addons.test_http_proxy import ca_file, wait_listening
from tests.fakes.fixtures import tls_cert_for
from tests.fakes.upstream import FakeUpstream, Reply
from tests.router.bridge.dnsfake import FakeDns

HOST = "api.anthropic.com"


def _dead_loopback_port(host: str) -> int:
    """A port nothing listens on at ``host`` (a refused connection: a dead address)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("records", "origin_host"),
    [
        (["127.0.0.2", "127.0.0.3"], "127.0.0.3"),  # two A records, the first dead
        (["127.0.0.2", "::1"], "::1"),  # A dead, AAAA live
    ],
)
async def test_passthrough_tries_every_resolved_address(
    tmp_path: Path, records: list[str], origin_host: str
) -> None:
    tls = tls_cert_for(tmp_path, hosts=(HOST,), name="origin")
    async with FakeUpstream(ssl_context=tls.server_context(), host=origin_host) as origin:
        origin.default_reply = Reply.text("from the live address")
        with (
            FakeDns({HOST: records}) as dns,
            divert_up(
                tmp_path, dns, "--upstream-ca", str(tls.ca_pem), origin_port=origin.port, proxy=True
            ) as (app, bridge_port),
        ):
            # Through the bridge (SNI = the agent host) and through the proxy alike.
            status, _, text, _ = await call_via_bridge(bridge_port, ca_file(app), CASES[0], False)
            assert status == 200, text
            assert "from the live address" in text
            async with proxy_client(app) as http:
                resp = await http.post(
                    f"https://{HOST}/v1/messages",
                    json=CASES[0].body(False),
                    headers={"x-api-key": "agent-own-key-0123456789"},
                )
            assert resp.status_code == 200, resp.text
            assert len([q for q in origin.requests if q.path == "/v1/messages"]) == 2
            # Both answers asked DNS for A and AAAA (the TTL cache may serve the second).
            assert dns.queries[(HOST, "A")] >= 1 and dns.queries[(HOST, "AAAA")] >= 1


async def test_every_resolved_address_dead_is_a_502_naming_them(tmp_path: Path) -> None:
    dead = _dead_loopback_port("127.0.0.2")
    with (
        FakeDns({HOST: ["127.0.0.2", "127.0.0.3"]}) as dns,
        divert_up(tmp_path, dns, origin_port=dead) as (app, bridge_port),
    ):
        status, _, text, _ = await call_via_bridge(bridge_port, ca_file(app), CASES[0], False)
        assert status == 502, text
        assert "127.0.0.2" in text and "127.0.0.3" in text, text


async def test_loop_into_a_listener_bound_to_port_0_is_refused(tmp_path: Path) -> None:
    """The bridge is configured with port 0. A proxied call whose origin resolves to that
    listener's real port is a loop: 508, as for a fixed port; and a literal address of it is
    refused before anything is sent."""
    with (
        FakeDns({HOST: ["127.0.0.1"]}) as dns,
        divert_up(tmp_path, dns, bridge_port=0, proxy=True) as (app, _),
    ):
        port = app.api("GET", f"{BRIDGE_API}/state").json()["port"]
        assert port != 0
        wait_listening(port)
        async with proxy_client(app) as http:
            resp = await http.get(f"https://{HOST}:{port}/v1/models")
            assert resp.status_code == 508, resp.text
            assert resp.json()["error"]["code"] == "loop_detected"
            resp = await http.get(f"https://127.0.0.1:{port}/v1/models")
            assert resp.status_code == 403, resp.text
