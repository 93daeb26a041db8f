"""The upstream CA set through the API applies live, in the router and the proxy alike: a TLS
origin signed by a private ("corporate") CA fails verification before ``POST upstream-ca`` and
is reached after it, with no restart."""

from __future__ import annotations

import httpx

from tests.addons.proc import Llmtap, start_llmtap
from tests.addons.test_http_proxy import http_client, wait_listening
from tests.fakes.fixtures import tls_cert_for
from tests.fakes.upstream import FakeUpstream, Reply

B = "/api/tools/agent-bridge"
CHAT = {"model": "corp/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


async def router_call(app: Llmtap) -> httpx.Response:
    # Async: the fake origin runs on this test's event loop.
    async with httpx.AsyncClient(timeout=60) as http:
        return await http.post(f"{app.url}/v1/chat/completions", json=CHAT)


async def proxy_call(app: Llmtap, origin: FakeUpstream) -> httpx.Response:
    async with http_client(app) as http:
        return await http.get(f"https://localhost:{origin.port}/v1/models")


async def test_upstream_ca_from_the_api_applies_without_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    corp = tls_cert_for(tmp_path, hosts=("127.0.0.1", "localhost"), name="corp")
    async with FakeUpstream(ssl_context=corp.server_context()) as origin:
        app = start_llmtap(
            tmp_path / "data",
            "--provider",
            f"openai={origin.url}/v1,name=corp,models=gpt-4o-mini",
            env={"LLMTAP_HTTP_PROXY_AUTOSTART": "true"},
        )
        try:
            wait_listening(app.proxy_port)
            origin.default_reply = Reply.text("through the corporate CA")

            before = await router_call(app)
            assert before.status_code == 502, before.text
            assert "certificate" in before.text.lower(), before.text
            proxied = await proxy_call(app, origin)
            assert proxied.status_code == 502, proxied.text
            assert "certificate" in proxied.text.lower(), proxied.text
            assert origin.requests == []  # neither got past the TLS handshake

            resp = app.api("POST", f"{B}/upstream-ca", json={"path": str(corp.ca_pem)})
            assert resp.status_code == 200, resp.text
            body = resp.json()
            assert (body["applied"], body["appliesAfterRestart"]) == (True, False), body
            assert (body["path"], body["source"]) == (str(corp.ca_pem), "api"), body

            after = await router_call(app)
            assert after.status_code == 200, after.text
            assert after.json()["choices"][0]["message"]["content"] == "through the corporate CA"
            proxied = await proxy_call(app, origin)
            assert proxied.status_code == 200, proxied.text
            assert [r.path for r in origin.requests] == ["/v1/chat/completions", "/v1/models"]
        finally:
            assert app.stop() == 0, app.log()


async def test_the_flag_wins_and_nothing_changes_live(tmp_path) -> None:  # type: ignore[no-untyped-def]
    corp = tls_cert_for(tmp_path, hosts=("127.0.0.1", "localhost"), name="corp")
    other = tls_cert_for(tmp_path, hosts=("127.0.0.1",), name="other")
    async with FakeUpstream(ssl_context=corp.server_context()) as origin:
        app = start_llmtap(
            tmp_path / "data",
            "--upstream-ca",
            str(corp.ca_pem),
            "--provider",
            f"openai={origin.url}/v1,name=corp,models=gpt-4o-mini",
        )
        try:
            resp = app.api("POST", f"{B}/upstream-ca", json={"path": str(other.ca_pem)})
            assert resp.status_code == 200, resp.text
            body = resp.json()
            assert (body["overriddenBy"], body["applied"]) == ("flag", False), body
            assert body["appliesAfterRestart"] is False and body["path"] == str(corp.ca_pem)
            assert (await router_call(app)).status_code == 200  # still the flag's CA
        finally:
            assert app.stop() == 0, app.log()
