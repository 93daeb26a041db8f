"""Access control of /api: loopback peers, loopback Host, CSRF-proof state changes, optional
login with the management token, and the constant-time ingest token."""

from __future__ import annotations

import hmac
import socket
import stat
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from addons.webapp import WebApp
from tests.fakes.upstream import FakeUpstream, Reply
from tests.web.harness import Server, start_server
from web.app import create_app
from web.security import (
    INGEST_HEADER,
    TOKEN_COOKIE,
    TOKEN_HEADER,
    ingest_token,
    is_loopback_host,
    is_loopback_peer,
    is_same_origin,
)

P = "/api/tools/traffic-inspector"


def test_peer_check_uses_the_socket_address() -> None:
    assert is_loopback_peer(("127.0.0.1", 5000))
    assert is_loopback_peer(("127.8.9.10", 5000))
    assert is_loopback_peer(("::1", 5000, 0, 0))
    assert is_loopback_peer(("::ffff:127.0.0.1", 5000, 0, 0))
    assert is_loopback_peer("")  # a Unix socket peer is a local process
    assert not is_loopback_peer(("10.1.2.3", 5000))
    assert not is_loopback_peer(("192.168.1.20", 5000))
    assert not is_loopback_peer(("::ffff:10.0.0.1", 5000, 0, 0))
    assert not is_loopback_peer(("fe80::1%eth0", 5000, 0, 2))
    assert not is_loopback_peer(None)
    assert not is_loopback_peer(("localhost", 1))  # a peername is an address, never a name


def test_host_header_check() -> None:
    for ok in ("localhost", "localhost:20128", "LOCALHOST.", "127.0.0.1", "127.0.0.1:80",
               "127.1.2.3:9", "[::1]", "[::1]:20128", "[::ffff:127.0.0.1]:20128",
               "[::ffff:7f00:1]"):  # fmt: skip
        assert is_loopback_host(ok), ok
    for bad in (None, "", "evil.example", "evil.example:20128", "127.0.0.1.evil.example",
                "localhost.evil.example", "10.0.0.1", "[::1]x", "127.0.0.1:99999",
                "0.0.0.0", "[::]:20128", "[::ffff:10.0.0.1]", "[::ffff:0.0.0.0]:1"):  # fmt: skip
        assert not is_loopback_host(bad), bad


def test_origin_must_be_this_server() -> None:
    assert is_same_origin("http://127.0.0.1:20128", "127.0.0.1:20128")
    assert not is_same_origin("http://localhost:3000", "localhost:20128")
    assert not is_same_origin("https://evil.example", "127.0.0.1:20128")
    assert not is_same_origin("null", "127.0.0.1:20128")


async def test_rebinding_and_csrf_are_refused(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        evil = await client.get(P + "/requests", headers={"Host": "evil.example"})
        assert evil.status_code == 403
        assert evil.json()["error"]["type"] == "permission_error"
        assert evil.json()["error"]["requestId"]
        # the router API refuses a rebound Host too (tests/web/test_security_v1.py)
        models = await client.get("/v1/models", headers={"Host": "evil.example"})
        assert models.status_code == 403

        form = await client.post(P + "/sessions", data={"name": "x"})
        assert form.status_code == 403
        plain = await client.post(
            P + "/sessions", content=b'{"name":"x"}', headers={"Content-Type": "text/plain"}
        )
        assert plain.status_code == 403
        bare = await client.post(P + "/sessions")
        assert bare.status_code == 403
        cross = await client.post(
            P + "/sessions", json={}, headers={"Origin": "http://localhost:3000"}
        )
        assert cross.status_code == 403
        assert (await client.get(P + "/sessions")).json() == []  # nothing was created

        assert (await client.post(P + "/sessions", json={"name": "ok"})).status_code == 201
        same = await client.post(
            P + "/sessions", content=b"", headers={"Sec-Fetch-Site": "same-origin"}
        )
        assert same.status_code == 201
        token = server.runtime.management_token()
        with_token = await client.post(P + "/sessions", headers={TOKEN_HEADER: token})
        assert with_token.status_code == 201
        own_origin = await client.post(P + "/sessions", json={}, headers={"Origin": server.url})
        assert own_origin.status_code == 201
        # DELETE is never a CORS-simple method: no body, no proof needed
        assert (await client.delete(P + "/requests")).status_code == 204
        # X-Forwarded-For does not matter either way
        spoofed = await client.get(P + "/requests", headers={"X-Forwarded-For": "8.8.8.8"})
        assert spoofed.status_code == 200


def non_loopback_address() -> str | None:
    candidates: list[str] = []
    try:
        candidates.append(socket.gethostbyname(socket.gethostname()))
    except OSError:
        pass
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # UDP connect sends nothing; it picks a route
            candidates.append(probe.getsockname()[0])
    except OSError:
        pass
    for address in candidates:
        if not address.startswith("127.") and address != "0.0.0.0":
            return address
    return None


async def test_a_non_loopback_peer_gets_403(server: Server) -> None:
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    webapp = WebApp(create_app(server.runtime), address, 0)
    await webapp.running()
    try:
        url = f"http://{address}:{webapp.bound_port}"
        async with httpx.AsyncClient(base_url=url) as client:
            resp = await client.get(
                P + "/requests",
                headers={"Host": "127.0.0.1", "X-Forwarded-For": "127.0.0.1"},
            )
            assert resp.status_code == 403
            assert "local clients" in resp.json()["error"]["message"]
    finally:
        await webapp.done()


async def test_require_login(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    server, webapp = await start_server(
        tmp_path / "data", fake_upstream, lanes=[], require_login=True
    )
    token = server.runtime.management_token()
    path = tmp_path / "data" / "token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            denied = await client.get(P + "/requests")
            assert denied.status_code == 401
            assert denied.json()["error"]["type"] == "authentication_error"
            wrong = await client.get(P + "/requests", headers={TOKEN_HEADER: token + "x"})
            assert wrong.status_code == 401
            ok = await client.get(P + "/requests", headers={TOKEN_HEADER: token})
            assert ok.status_code == 200
            # the router API keeps its own rules
            server.upstream.script(Reply.text("x"))
            assert (await client.get("/v1/models")).status_code == 200

            bad_start = await client.get("/", params={"token": "nope"})
            assert bad_start.status_code == 401
            start = await client.get("/", params={"token": token, "tab": "live"})
            assert start.status_code == 303
            assert start.headers["location"] == "/?tab=live"
            cookie = start.headers["set-cookie"]
            assert f"{TOKEN_COOKIE}={token}" in cookie
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert client.cookies.get(TOKEN_COOKIE) == token
            by_cookie = await client.get(P + "/requests")
            assert by_cookie.status_code == 200
            # the cookie logs in, but is no CSRF proof: the browser adds it on its own
            form = await client.post(P + "/sessions", data={"name": "x"})
            assert form.status_code == 403
    finally:
        await webapp.done()
        await server.runtime.close()


async def test_ingest_needs_its_token_compared_in_constant_time(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    data_dir = server.runtime.settings.data_dir
    token = ingest_token(data_dir)
    assert stat.S_IMODE((data_dir / "ingest-token").stat().st_mode) == 0o600
    assert ingest_token(data_dir) == token  # generated once
    record: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "source": "http-proxy",
        "timestamp": datetime.now(UTC).isoformat(),
        "method": "GET",
        "host": "example.com",
        "path": "/",
        "status": "in-flight",
    }
    url = P + "/internal/ingest"
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.post(url, json=record)).status_code == 401
        bad = await client.post(url, json=record, headers={INGEST_HEADER: token[:-1] + "!"})
        assert bad.status_code == 401
        assert compared and all(isinstance(a, bytes) for a, _ in compared)
        # no JSON content type needed (its own token is the proof), and add then update
        first = await client.post(
            url, content=httpx.Request("POST", "/", json=record).content,
            headers={INGEST_HEADER: token, "Content-Type": "text/plain"},
        )  # fmt: skip
        assert first.status_code == 200
        final = {**record, "status": 204, "responseSize": 0}
        assert (
            await client.post(url, json=final, headers={INGEST_HEADER: token})
        ).status_code == 200
        invalid = await client.post(url, json={"id": "x"}, headers={INGEST_HEADER: token})
        assert invalid.status_code == 400
    listed = (await server.api("GET", P + "/requests")).json()
    assert [(r["id"], r["status"]) for r in listed] == [(record["id"], 204)]
