"""The proxy never reaches llmtap's own listeners, however the address is spelled: the
decision is made on the resolved address at connect time (real mitmproxy, real sockets)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.addons.proc import Llmtap, start_llmtap
from tests.addons.test_http_proxy import wait_listening
from web.security import is_local_address, self_connect_refusal


@pytest.fixture
def proxy_app(tmp_path: Path) -> Iterator[Llmtap]:
    app = start_llmtap(tmp_path / "data", env={"LLMTAP_HTTP_PROXY_AUTOSTART": "true"})
    try:
        wait_listening(app.proxy_port)
        yield app
    finally:
        assert app.stop() == 0, app.log()


def test_local_address_covers_every_spelling_of_this_machine() -> None:
    for ok in ("127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1", "0.0.0.0", "::",
               "::ffff:0.0.0.0"):  # fmt: skip
        assert is_local_address(ok), ok
    for bad in ("203.0.113.9", "8.8.8.8", "2001:db8::1", "::ffff:8.8.8.8", "not-an-ip"):
        assert not is_local_address(bad), bad


def test_refusal_is_one_decision_with_an_authenticated_exception() -> None:
    ports = {20128, 8080}
    assert self_connect_refusal(["127.0.0.1"], 20128, ports)
    assert self_connect_refusal(["::ffff:127.0.0.1"], 8080, ports)
    assert self_connect_refusal(["93.184.216.34", "127.0.0.1"], 20128, ports)  # any of them
    assert self_connect_refusal(["127.0.0.1"], 20128, ports, hop_authenticated=True) is None
    assert self_connect_refusal(["127.0.0.1"], 9999, ports) is None  # another local service
    assert self_connect_refusal(["93.184.216.34"], 20128, ports) is None


def _proxy(app: Llmtap) -> httpx.Client:
    return httpx.Client(proxy=f"http://127.0.0.1:{app.proxy_port}", timeout=20)


def _providers(app: Llmtap) -> list[dict]:
    resp = app.api("GET", "/api/providers")
    assert resp.status_code == 200, resp.text
    return resp.json()["connections"]


# Each spelling reaches this machine's loopback; none is on a list of "loopback names".
SPELLINGS = ["[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "127.1", "2130706433", "0"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_proxy_refuses_own_api_under_any_spelling(proxy_app: Llmtap, spelling: str) -> None:
    app = proxy_app
    url = f"http://{spelling}:{app.port}/api/providers"
    host = f"localhost:{app.port}"
    assert _forward(app, f"GET {url} HTTP/1.1\r\nHost: {host}\r\n\r\n") in (403, 502)
    body = '{"provider":"openai","name":"evil","url":"http://127.0.0.1:9/v1"}'
    post = (
        f"POST {url} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    )
    assert _forward(app, post) in (403, 502)
    assert not [p for p in _providers(app) if p["name"] == "evil"]


def test_proxy_refuses_a_hostname_that_resolves_to_loopback(proxy_app: Llmtap) -> None:
    app = proxy_app
    name = socket.gethostname()
    if socket.getaddrinfo(name, None)[0][4][0] not in ("127.0.0.1", "::1", "127.0.1.1"):
        name = "127.1"  # inet_aton's short form: a "hostname" the resolver maps to 127.0.0.1
    with _proxy(app) as http:
        got = http.get(
            f"http://{name}:{app.port}/api/providers", headers={"Host": f"localhost:{app.port}"}
        )
    assert got.status_code in (403, 502), got.text


def _forward(app: Llmtap, request: str) -> int:
    """Send one absolute-form request (as curl -x does) and return the proxy's status."""
    with socket.create_connection(("127.0.0.1", app.proxy_port), timeout=20) as sock:
        sock.sendall(request.encode())
        return int(_read_head(sock).split(b" ", 2)[1])


@pytest.mark.parametrize("target", ["127.1", "[::ffff:127.0.0.1]", "localhost"])
def test_connect_tunnel_to_own_ports_is_refused(proxy_app: Llmtap, target: str) -> None:
    app = proxy_app
    for port in (app.port, app.proxy_port):
        with socket.create_connection(("127.0.0.1", app.proxy_port), timeout=20) as sock:
            sock.sendall(
                f"CONNECT {target}:{port} HTTP/1.1\r\nHost: {target}:{port}\r\n\r\n".encode()
            )
            head = _read_head(sock)
            status = int(head.split(b" ", 2)[1])
            if status == 200:  # the tunnel opened: what comes through must not be the API
                sock.sendall(
                    f"GET /api/providers HTTP/1.1\r\nHost: localhost:{app.port}\r\n"
                    "Connection: close\r\n\r\n".encode()
                )
                status = int(_read_head(sock).split(b" ", 2)[1])
            assert status in (403, 502), (target, port, head)


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    assert data, "the proxy closed the connection without a reply"
    return data
