"""/api/tools/agent-bridge/* against a real ``llmtap up``, with a temp hosts file, a temp trust
store and recording fakes of the OS tools (tests/addons/bridgeenv.py)."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests.addons.bridgeenv import ORIGINAL, BridgeEnv, bridge_env
from tests.addons.proc import Llmtap
from tests.fakes.fixtures import TlsFiles, ca_key_id, issuer_key_id, tls_cert_for

B = "/api/tools/agent-bridge"


@pytest.fixture
def env(tmp_path: Path) -> BridgeEnv:
    return bridge_env(tmp_path)


@pytest.fixture
def served(env: BridgeEnv) -> Iterator[Llmtap]:
    """A server of its own, for tests that look at the hosts file and the trust store."""
    inst = env.start()
    try:
        yield inst
    finally:
        assert inst.stop() == 0, inst.log()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Llmtap]:
    """One server for the tests that do not depend on each other's files (in file order)."""
    inst = bridge_env(tmp_path_factory.mktemp("bridge")).start()
    try:
        yield inst
    finally:
        assert inst.stop() == 0, inst.log()


def details(resp: object) -> dict[str, str]:
    body = resp.json()  # type: ignore[attr-defined]
    return {d["field"]: d["message"] for d in body["error"].get("details") or []}


def test_agents_lists_nine_and_capture_only_ones_say_why(app: Llmtap) -> None:
    resp = app.api("GET", f"{B}/agents")
    assert resp.status_code == 200, resp.text
    rows = {r["agent_id"]: r for r in resp.json()}
    assert len(rows) == 9
    for agent in ("zed", "kiro", "cursor", "trae"):
        assert rows[agent]["divert"] is False
        assert rows[agent]["capture_only_reason"]
    for agent in ("claude-code", "codex", "copilot", "open-code", "antigravity"):
        assert rows[agent]["divert"] is True and rows[agent]["capture_only_reason"] is None
    assert rows["claude-code"]["hosts"] == ["api.anthropic.com"]
    assert (
        rows["claude-code"]["dns_enabled"] is False and rows["claude-code"]["dns_active"] is False
    )


def test_dns_enable_then_disable_restores_the_hosts_file_byte_for_byte(
    env: BridgeEnv, served: Llmtap
) -> None:
    mode = env.hosts.stat().st_mode
    for agent in ("claude-code", "codex"):
        resp = served.api("POST", f"{B}/agents/{agent}/dns", json={"enabled": True})
        assert resp.status_code == 200, resp.text
        assert resp.json()["dns_enabled"] is True
        assert resp.json()["resolverFlushed"] is True
    text = env.hosts.read_bytes()
    assert text.startswith(ORIGINAL + b"\n"), "the user's lines stay as they were, in place"
    added = text[len(ORIGINAL) + 1 :].decode().splitlines()
    assert added == [
        "127.0.0.1 api.anthropic.com # llmtap",
        "::1 api.anthropic.com # llmtap",
        "127.0.0.1 api.openai.com # llmtap",
        "::1 api.openai.com # llmtap",
        "127.0.0.1 chatgpt.com # llmtap",
        "::1 chatgpt.com # llmtap",
    ]
    assert env.hosts.stat().st_mode == mode
    assert ["resolvectl", "flush-caches"] in env.fake.calls()
    # Backup of the original and the undo journal, both written before the change.
    assert (env.data_dir / "hosts.original").read_bytes() == ORIGINAL
    journal = json.loads((env.data_dir / "journal.json").read_text())
    assert len(journal["hosts"][str(env.hosts)]["added"]) == 6
    rows = {r["agent_id"]: r for r in served.api("GET", f"{B}/agents").json()}
    assert rows["codex"]["dns_active"] is True and rows["codex"]["setup_completed"] is True

    # Enabling again changes nothing (idempotent); a user line added meanwhile is kept.
    assert served.api("POST", f"{B}/agents/codex/dns", json={"enabled": True}).status_code == 200
    assert env.hosts.read_bytes() == text

    for agent in ("codex", "claude-code"):
        resp = served.api("POST", f"{B}/agents/{agent}/dns", json={"enabled": False})
        assert resp.status_code == 200, resp.text
    assert env.hosts.read_bytes() == ORIGINAL
    assert env.hosts.stat().st_mode == mode


def test_dns_validation(app: Llmtap) -> None:
    resp = app.api("POST", f"{B}/agents/nope/dns", json={"enabled": True})
    assert resp.status_code == 400 and "agentId" in details(resp)
    resp = app.api("POST", f"{B}/agents/codex/dns", json={"enabled": "maybe"})
    assert resp.status_code == 400 and "enabled" in details(resp)
    resp = app.api("POST", f"{B}/agents/trae/dns", json={"enabled": True})
    assert resp.status_code == 400, "trae has no verified host to redirect"


def put_mappings(app: Llmtap, agent: str, *rows: dict[str, str]) -> httpx.Response:
    """PUT an agent's whole mapping list."""
    return app.api("PUT", f"{B}/agents/{agent}/mappings", json={"mappings": list(rows)})


def test_mappings_are_validated_and_replaced_atomically(app: Llmtap) -> None:
    resp = app.api(
        "POST",
        "/api/providers",
        json={"provider": "openai", "name": "oa", "url": "http://127.0.0.1:9/v1"},
    )
    assert resp.status_code == 201, resp.text
    url = f"{B}/agents/claude-code/mappings"
    assert app.api("GET", url).json() == []

    resp = put_mappings(
        app,
        "claude-code",
        {"source": "claude-sonnet-4", "target": "oa/gpt-4.1-mini"},
        {"source": "*", "target": "nowhere/model"},
        {"source": "x", "target": "oa/o3", "effort": "huge"},
    )
    assert resp.status_code == 400
    problems = details(resp)
    assert set(problems) == {"mappings.1.target", "mappings.2.effort"}
    assert "does not resolve" in problems["mappings.1.target"]
    assert app.api("GET", url).json() == [], "a rejected PUT changes nothing"

    resp = put_mappings(
        app,
        "claude-code",
        {"source": "claude-sonnet-4", "target": "oa/gpt-4.1-mini"},
        {"source": "*", "target": "oa/o3", "effort": "max"},
    )
    assert resp.status_code == 200, resp.text
    rows = app.api("GET", url).json()
    assert [(r["source_model"], r["target_model"], r["effort"]) for r in rows] == [
        ("claude-sonnet-4", "oa/gpt-4.1-mini", None),
        ("*", "oa/o3", "xhigh"),
    ]
    assert all(r["agent_id"] == "claude-code" and r["updated_at"] for r in rows)

    resp = put_mappings(app, "claude-code", {"source": "*", "target": "oa/gpt-4o"})
    assert [r["source_model"] for r in resp.json()] == ["*"]

    resp = put_mappings(app, "zed", {"source": "*", "target": "oa/gpt-4o"})
    assert resp.status_code == 400 and "capture-only" in resp.json()["error"]["message"]
    resp = put_mappings(app, "claude-code", {"source": "", "target": "oa/x"})
    assert resp.status_code == 400 and "mappings.0.source" in details(resp)

    resp = app.api("GET", f"{B}/agents/claude-code/detected-models")
    assert resp.status_code == 200 and resp.json() == []


def test_route_all_flag(app: Llmtap) -> None:
    resp = app.api("POST", f"{B}/agents/codex/route-all", json={"routeAll": True})
    assert resp.status_code == 200 and resp.json()["route_all"] is True
    rows = {r["agent_id"]: r for r in app.api("GET", f"{B}/agents").json()}
    assert rows["codex"]["route_all"] is True
    resp = app.api("POST", f"{B}/agents/kiro/route-all", json={"routeAll": True})
    assert resp.status_code == 400


def test_bypass_defaults_and_user_set(app: Llmtap) -> None:
    rows = app.api("GET", f"{B}/bypass").json()
    assert {r["pattern"] for r in rows if r["source"] == "default"} >= {"bank", "*.okta.com"}
    assert not [r for r in rows if r["source"] == "user"]
    resp = app.api("PUT", f"{B}/bypass", json={"patterns": ["*.corp.example", "*"]})
    assert resp.status_code == 400 and "patterns.1" in details(resp)
    resp = app.api("PUT", f"{B}/bypass", json={"patterns": ["*.Corp.example", "vault.local"]})
    assert resp.status_code == 200, resp.text
    user = [r["pattern"] for r in resp.json() if r["source"] == "user"]
    assert user == ["*.corp.example", "vault.local"]
    assert app.api("GET", f"{B}/bypass").json() == resp.json()


class TlsOrigin:
    """A TLS server on loopback that completes handshakes with its own certificate."""

    def __init__(self, files: TlsFiles) -> None:
        self.ctx = files.server_context()
        self.cert = x509.load_pem_x509_certificate(files.cert_pem.read_bytes())
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            with contextlib.suppress(OSError), self.ctx.wrap_socket(conn, server_side=True):
                pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def test_bypass_put_applies_to_the_next_connection(tmp_path: Path, app: Llmtap) -> None:
    origin = TlsOrigin(tls_cert_for(tmp_path, ("localhost",), name="origin"))
    try:
        resp = app.api(
            "POST",
            "/api/tools/traffic-inspector/capture-modes/http-proxy",
            json={"action": "start"},
        )
        assert resp.status_code == 200, resp.text
        seen = _peer_cert(app.proxy_port, "localhost", origin.port)
        assert seen != origin.cert and "llmtap" in seen.issuer.rfc4514_string()
        resp = app.api("PUT", f"{B}/bypass", json={"patterns": ["localhost"]})
        assert resp.status_code == 200, resp.text
        # No restart: the next TLS ClientHello is tunnelled raw, the origin's own certificate.
        assert _peer_cert(app.proxy_port, "localhost", origin.port) == origin.cert
    finally:
        origin.close()


def test_server_actions(app: Llmtap) -> None:
    resp = app.api("POST", f"{B}/server", json={"action": "explode"})
    assert resp.status_code == 400 and "action" in details(resp)
    state = app.api("GET", f"{B}/state").json()
    assert state["certReady"] is True and state["running"] is False
    assert state["available"] is True  # the :443 listener is part of this build
    resp = app.api("POST", f"{B}/server", json={"action": "stop"})
    assert resp.status_code == 200 and resp.json()["running"] is False


def _peer_cert(proxy_port: int, sni: str, port: int = 443) -> x509.Certificate:
    """Through the running HTTP proxy (CONNECT), the TLS certificate the client is shown."""
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=10) as raw:
        raw.sendall(f"CONNECT {sni}:{port} HTTP/1.1\r\nHost: {sni}:{port}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = raw.recv(4096)
            assert chunk, "proxy closed the connection"
            head += chunk
        assert head.startswith(b"HTTP/1.1 200"), head
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with ctx.wrap_socket(raw, server_hostname=sni) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _leaf_issuer_key(proxy_port: int, sni: str) -> bytes:
    """The key identifier of the CA that signed the leaf mitmproxy serves for ``sni``."""
    return issuer_key_id(_peer_cert(proxy_port, sni))


def test_regenerate_switches_the_running_proxy_to_the_new_ca(app: Llmtap) -> None:
    resp = app.api(
        "POST", "/api/tools/traffic-inspector/capture-modes/http-proxy", json={"action": "start"}
    )
    assert resp.status_code == 200, resp.text
    old_pem = app.api("POST", f"{B}/cert", json={"action": "download"})
    assert old_pem.status_code == 200
    assert old_pem.text.startswith("-----BEGIN CERTIFICATE-----")
    old_fp = old_pem.headers["X-Llmtap-Fingerprint"]
    assert _leaf_issuer_key(app.proxy_port, "api.anthropic.com") == ca_key_id(old_pem.text)

    resp = app.api("POST", f"{B}/cert", json={"action": "regenerate"})
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert result["previousFingerprint"] == old_fp and result["fingerprint"] != old_fp
    assert result["reloaded"] is True
    new_pem = app.api("POST", f"{B}/cert", json={"action": "download"}).text
    assert new_pem != old_pem.text
    # Same SNI as before: a cached leaf of the old CA must not be served.
    assert _leaf_issuer_key(app.proxy_port, "api.anthropic.com") == ca_key_id(new_pem)
    assert app.api("GET", f"{B}/cert").json()["fingerprint"] == result["fingerprint"]


def test_trust_untrust_and_regenerate_in_the_temp_store(env: BridgeEnv, served: Llmtap) -> None:
    info = served.api("GET", f"{B}/cert").json()
    assert info["trusted"] is False
    resp = served.api("POST", f"{B}/server", json={"action": "trust-cert"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "installed" and resp.json()["trusted"] is True
    anchor = env.anchors / "llmtap-ca.crt"
    assert anchor.read_text() == served.api("POST", f"{B}/cert", json={"action": "download"}).text
    assert ["update-ca-certificates"] in env.fake.calls()
    assert all(r["cert_trusted"] for r in served.api("GET", f"{B}/agents").json())

    # A trusted CA that is regenerated is replaced in the store by the new one.
    regen = served.api("POST", f"{B}/server", json={"action": "regenerate-cert"}).json()
    assert regen["trusted"] is True and regen["trust"]["status"] == "installed"
    assert served.api("GET", f"{B}/cert").json()["trusted"] is True

    resp = served.api("POST", f"{B}/cert/untrust")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "removed" and resp.json()["trusted"] is False
    assert not anchor.exists()
    assert served.api("GET", f"{B}/cert").json()["trusted"] is False


def test_trust_where_the_store_cannot_be_written_gives_the_manual_guide(
    env: BridgeEnv, served: Llmtap
) -> None:
    env.fake.remove_tool("update-ca-certificates")
    resp = served.api("POST", f"{B}/server", json={"action": "trust-cert"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "skipped" and body["trusted"] is False
    assert "NODE_EXTRA_CA_CERTS" in body["guide"] and "update-ca-certificates" in body["detail"]


def test_upstream_ca(tmp_path: Path, app: Llmtap) -> None:
    assert app.api("GET", f"{B}/upstream-ca").json()["path"] is None
    resp = app.api("POST", f"{B}/upstream-ca", json={"path": str(tmp_path / "missing.pem")})
    assert resp.status_code == 400 and "does not exist" in details(resp)["path"]
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    resp = app.api("POST", f"{B}/upstream-ca", json={"path": str(junk)})
    assert resp.status_code == 400 and "no valid PEM" in details(resp)["path"]
    resp = app.api("POST", f"{B}/upstream-ca", json={})
    assert resp.status_code == 400 and "path" in details(resp)

    good = tmp_path / "corp.pem"
    good.write_text(app.api("POST", f"{B}/cert", json={"action": "download"}).text)
    resp = app.api("POST", f"{B}/upstream-ca", json={"path": str(good)})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["stored"] == str(good) and (body["applied"], body["appliesAfterRestart"]) == (
        True,
        False,
    )
    assert app.api("GET", f"{B}/upstream-ca").json()["stored"] == str(good)


def test_diagnose_each_failing_check_has_a_fix(env: BridgeEnv, served: Llmtap) -> None:
    served.api("POST", f"{B}/agents/claude-code/dns", json={"enabled": True})
    report = served.api("GET", f"{B}/diagnose").json()
    checks = {(c["id"], c.get("agent")): c for c in report["checks"]}
    assert checks[("server-running", None)]["ok"] is True
    assert checks[("cert-exists", None)]["ok"] is True
    assert checks[("cert-trusted", None)]["ok"] is False
    assert "llmtap ca trust" in checks[("cert-trusted", None)]["fix"]
    assert checks[("hosts-file-writable", None)]["ok"] is True
    assert checks[("dns-configured", "claude-code")]["status"] == "ok"
    assert checks[("dns-configured", "codex")]["status"] == "skip"
    assert ("server-reachable", None) in checks
    assert report["ok"] is False
    assert all(c.get("fix") for c in report["checks"] if not c["ok"])

    served.api("POST", f"{B}/server", json={"action": "trust-cert"})
    checks = {
        (c["id"], c.get("agent")): c for c in served.api("GET", f"{B}/diagnose").json()["checks"]
    }
    assert checks[("cert-trusted", None)]["ok"] is True


def test_repair_removes_every_line_and_clears_the_flags(env: BridgeEnv, served: Llmtap) -> None:
    for agent in ("copilot", "antigravity"):
        served.api("POST", f"{B}/agents/{agent}/dns", json={"enabled": True})
    assert env.hosts.read_bytes() != ORIGINAL
    resp = served.api("POST", f"{B}/repair")
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["hostsLinesRemoved"]) == 2 * (5 + 4)
    assert env.hosts.read_bytes() == ORIGINAL
    assert not any(r["dns_enabled"] for r in served.api("GET", f"{B}/agents").json())
    again = served.api("POST", f"{B}/repair").json()
    assert again["hostsLinesRemoved"] == [] and again["errors"] == []


def test_shutdown_removes_the_lines(env: BridgeEnv) -> None:
    inst = env.start()
    try:
        inst.api("POST", f"{B}/agents/claude-code/dns", json={"enabled": True})
        assert b"# llmtap" in env.hosts.read_bytes()
    finally:
        assert inst.stop() == 0, inst.log()
    assert env.hosts.read_bytes() == ORIGINAL


def test_loopback_only_and_in_the_openapi_document(app: Llmtap) -> None:
    resp = app.api("GET", f"{B}/agents", headers={"Host": "evil.example"})
    assert resp.status_code == 403
    spec = app.api("GET", "/api/openapi/spec").json()
    paths = spec["paths"]
    for path in (
        f"{B}/agents",
        f"{B}/state",
        f"{B}/server",
        f"{B}/agents/{{agentId}}/dns",
        f"{B}/agents/{{agentId}}/mappings",
        f"{B}/agents/{{agentId}}/detected-models",
        f"{B}/bypass",
        f"{B}/cert",
        f"{B}/upstream-ca",
        f"{B}/diagnose",
        f"{B}/repair",
    ):
        assert path in paths, path
    body = paths[f"{B}/server"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/ServerAction")
