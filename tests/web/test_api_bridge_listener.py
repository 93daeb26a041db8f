"""The control side with the real AgentBridge listener (mitmproxy reverse mode) of a running
``llmtap up``: DNS lines only while it listens, removed before it stops, custom hosts in the
same file, leaves from a regenerated CA at once, a port conflict named."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from cryptography import x509

from tests.addons.bridgeenv import ORIGINAL, bridge_env
from tests.addons.proc import free_port
from tests.fakes.fixtures import ca_key_id, issuer_key_id

B = "/api/tools/agent-bridge"
HOSTS = "/api/tools/traffic-inspector/hosts"


def _issuer_key(port: int, sni: str) -> bytes:
    """The key id of the CA that signed the leaf the bridge serves for ``sni``."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=sni) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    leaf = x509.load_der_x509_certificate(der)
    assert leaf.subject.rfc4514_string().endswith(sni) or sni in str(
        leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    )
    return issuer_key_id(leaf)


def test_dns_follows_the_listener_and_custom_hosts_share_the_file(tmp_path: Path) -> None:
    env = bridge_env(tmp_path)
    port = free_port()
    app = env.start(LLMTAP_BRIDGE_PORT=str(port))
    try:
        state = app.api("GET", f"{B}/state").json()
        assert state["available"] is True and state["running"] is False

        # Enabling an agent starts the listener first: its host never points at a dead port.
        resp = app.api("POST", f"{B}/agents/claude-code/dns", json={"enabled": True})
        assert resp.status_code == 200, resp.text
        assert "warning" not in resp.json()
        state = app.api("GET", f"{B}/state").json()
        assert state["running"] is True and state["port"] == port and state["lastStartedAt"]
        assert b"127.0.0.1 api.anthropic.com # llmtap" in env.hosts.read_bytes()
        checks = {
            (c["id"], c.get("agent")): c for c in app.api("GET", f"{B}/diagnose").json()["checks"]
        }
        assert checks[("server-reachable", None)]["ok"] is True
        assert checks[("dns-configured", "claude-code")]["status"] == "ok"

        # The bridge serves leaves from llmtap's CA; after regenerate, from the new one.
        pem = app.api("POST", f"{B}/cert", json={"action": "download"}).text
        assert _issuer_key(port, "api.anthropic.com") == ca_key_id(pem)
        regen = app.api("POST", f"{B}/server", json={"action": "regenerate-cert"})
        assert regen.status_code == 200, regen.text
        new_pem = app.api("POST", f"{B}/cert", json={"action": "download"}).text
        assert _issuer_key(port, "api.anthropic.com") == ca_key_id(new_pem) != ca_key_id(pem)

        # A custom host gets lines while the listener runs; disabling or deleting takes them.
        resp = app.api("POST", HOSTS, json={"host": "llm.corp.example", "kind": "llm"})
        assert resp.status_code == 201, resp.text
        assert b"::1 llm.corp.example # llmtap" in env.hosts.read_bytes()
        resp = app.api("PATCH", f"{HOSTS}/llm.corp.example", json={"enabled": False})
        assert resp.status_code == 200 and b"llm.corp.example" not in env.hosts.read_bytes()
        app.api("PATCH", f"{HOSTS}/llm.corp.example", json={"enabled": True})
        assert b"llm.corp.example # llmtap" in env.hosts.read_bytes()

        # Stop: every line goes first, the enabled flags stay; start writes them back.
        resp = app.api("POST", f"{B}/server", json={"action": "stop"})
        assert resp.status_code == 200 and resp.json()["running"] is False
        assert env.hosts.read_bytes() == ORIGINAL
        rows = {r["agent_id"]: r for r in app.api("GET", f"{B}/agents").json()}
        assert rows["claude-code"]["dns_enabled"] is True
        assert rows["claude-code"]["dns_active"] is False
        resp = app.api("POST", f"{B}/server", json={"action": "restart"})
        assert resp.status_code == 200 and resp.json()["running"] is True
        text = env.hosts.read_bytes()
        assert b"api.anthropic.com # llmtap" in text and b"llm.corp.example # llmtap" in text

        assert app.api("DELETE", f"{HOSTS}/llm.corp.example").status_code == 204
        assert b"llm.corp.example" not in env.hosts.read_bytes()
        app.api("POST", f"{B}/agents/claude-code/dns", json={"enabled": False})
        assert env.hosts.read_bytes() == ORIGINAL
    finally:
        assert app.stop() == 0, app.log()
    assert env.hosts.read_bytes() == ORIGINAL


def test_a_taken_port_is_a_409_naming_the_holder(tmp_path: Path) -> None:
    env = bridge_env(tmp_path)
    holder = socket.create_server(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    app = env.start(LLMTAP_BRIDGE_PORT=str(port))
    try:
        resp = app.api("POST", f"{B}/server", json={"action": "start"})
        assert resp.status_code == 409, resp.text
        message = resp.json()["error"]["message"]
        assert str(port) in message and "pid" in message
        # Enabling DNS needs the listener: nothing is written when it cannot start.
        resp = app.api("POST", f"{B}/agents/codex/dns", json={"enabled": True})
        assert resp.status_code == 409
        assert env.hosts.read_bytes() == ORIGINAL
        rows = {r["agent_id"]: r for r in app.api("GET", f"{B}/agents").json()}
        assert rows["codex"]["dns_enabled"] is False
        assert str(port) in rows["codex"]["last_error"]
        # `state` says why the listener is not running, and so does `llmtap bridge status`.
        state = app.api("GET", f"{B}/state").json()
        assert state["running"] is False and state["lastError"] == message
        status = env.cli("bridge", "status")
        assert status.returncode == 0, status.stderr
        assert f"last error: {message}" in status.stdout
        # A successful start clears it.
        holder.close()
        resp = app.api("POST", f"{B}/server", json={"action": "start"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["running"] is True and resp.json()["lastError"] is None
    finally:
        holder.close()
        assert app.stop() == 0, app.log()


def test_a_port_0_listener_reports_its_bound_port(tmp_path: Path) -> None:
    """LLMTAP_BRIDGE_PORT=0 binds an ephemeral port: state and `bridge status` name that port,
    where a client really connects (not 0)."""
    env = bridge_env(tmp_path)
    app = env.start(LLMTAP_BRIDGE_PORT="0")
    try:
        resp = app.api("POST", f"{B}/server", json={"action": "start"})
        assert resp.status_code == 200, resp.text
        port = resp.json()["port"]
        assert port != 0 and app.api("GET", f"{B}/state").json()["port"] == port
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass
        assert f"port {port}" in env.cli("bridge", "status").stdout
    finally:
        assert app.stop() == 0, app.log()
