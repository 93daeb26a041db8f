"""Capture mode http-proxy through real mitmproxy: SDKs and curl send through
HTTPS_PROXY with llmtap's CA to a TLS fake upstream; each call becomes one record."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.addons.proc import Llmtap, llmtap_argv, start_llmtap
from tests.fakes.fixtures import tls_cert_for
from tests.fakes.upstream import FakeUpstream, Reply

INSPECTOR = "/api/tools/traffic-inspector"


@pytest.fixture
async def proxied(
    tls_fake_upstream: tuple[FakeUpstream, Path], tmp_path: Path
) -> AsyncIterator[tuple[Llmtap, FakeUpstream]]:
    upstream, upstream_ca = tls_fake_upstream
    app = start_llmtap(
        tmp_path / "data",
        "--upstream-ca",
        str(upstream_ca),
        env={"LLMTAP_HTTP_PROXY_AUTOSTART": "true"},
    )
    try:
        wait_listening(app.proxy_port)
        yield app, upstream
    finally:
        assert app.stop() == 0, app.log()


def wait_listening(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def ca_file(app: Llmtap) -> Path:
    return app.data_dir / "ca" / "mitmproxy-ca-cert.pem"


def http_client(app: Llmtap) -> httpx.AsyncClient:
    ctx = ssl.create_default_context(cafile=str(ca_file(app)))
    return httpx.AsyncClient(proxy=f"http://127.0.0.1:{app.proxy_port}", verify=ctx, timeout=30)


def records(app: Llmtap) -> list[dict]:
    resp = app.api("GET", f"{INSPECTOR}/requests?profile=all")
    assert resp.status_code == 200, resp.text
    return resp.json()


def wait_for(app: Llmtap, check: Callable[[dict], bool], timeout: float = 15) -> dict:
    """The first record that passes ``check``, polling (bounded) until it does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for rec in records(app):
            if check(rec):
                return rec
        time.sleep(0.1)
    raise AssertionError(f"no record passed the check: {records(app)}")


def wait_final(app: Llmtap, count: int, timeout: float = 15) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = [r for r in records(app) if r["status"] != "in-flight"]
        if len(got) >= count:
            return got
        time.sleep(0.1)
    raise AssertionError(f"expected {count} final records, have {records(app)}")


async def test_openai_sdk_through_proxy_is_recorded_once_with_llm_details(
    proxied: tuple[Llmtap, FakeUpstream],
) -> None:
    app, upstream = proxied
    upstream.script(Reply.text("proxied hello", usage=(21, 3, 0, 0, 0)))
    async with http_client(app) as http:
        client = openai.AsyncOpenAI(
            base_url=upstream.url.replace("127.0.0.1", "localhost") + "/v1",
            api_key="sk-proxy-secret-0123456789abcdefXYZ",
            http_client=http,
        )
        completion = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "hello?"},
            ],
        )
    assert completion.choices[0].message.content == "proxied hello"
    [rec] = wait_final(app, 1)
    assert rec["source"] == "http-proxy"
    assert rec["scheme"] == "https" and rec["host"] == "localhost"
    assert rec["path"] == "/v1/chat/completions"
    assert rec["status"] == 200
    assert rec["detectedKind"] == "llm"
    assert rec["contextKey"] and len(rec["contextKey"]) == 12
    llm = rec["llm"]
    assert (llm["apiKind"], llm["tokensIn"], llm["tokensOut"]) == ("openai-chat", 21, 3)
    assert llm["costUsd"] > 0
    assert llm["conversation"]["request"][-1]["blocks"][0]["text"] == "hello?"
    for field in ("proxyLatencyMs", "ttfbMs", "upstreamLatencyMs", "totalLatencyMs"):
        assert rec[field] is not None and rec[field] >= 0
    assert "sk-proxy-secret-0123456789abcdefXYZ" not in json.dumps(rec)
    assert rec["requestHeaders"]["authorization"] == "Bearer ***"
    # The client is this test process: the record names it (Linux, psutil).
    if sys.platform.startswith("linux"):
        rec = wait_for(app, lambda r: r.get("pid") is not None)
        assert rec["pid"] == os.getpid()
        assert "python" in rec["processName"].lower()


async def test_streaming_arrives_incrementally_and_is_merged(
    proxied: tuple[Llmtap, FakeUpstream],
) -> None:
    app, upstream = proxied
    words = [f"w{i} " for i in range(6)]
    upstream.script(Reply.text("".join(words), chunks=words, chunk_delay=0.25))
    ctx = ssl.create_default_context(cafile=str(ca_file(app)))
    # The anthropic SDK ships its own httpx fork: give it its own client type.
    async with anthropic.DefaultAsyncHttpxClient(
        proxy=f"http://127.0.0.1:{app.proxy_port}", verify=ctx
    ) as http:
        client = anthropic.AsyncAnthropic(
            base_url=upstream.url.replace("127.0.0.1", "localhost"),
            api_key="sk-ant-test-0123456789abcdef",
            http_client=http,
        )
        arrivals: list[float] = []
        async with client.messages.stream(
            model="claude-sonnet-4", max_tokens=50, messages=[{"role": "user", "content": "go"}]
        ) as stream:
            async for _text in stream.text_stream:
                arrivals.append(time.monotonic())
    assert len(arrivals) == len(words)
    # The upstream paces 6 deltas 0.25 s apart: had the proxy buffered the stream, they would
    # all land together at the end. A generous margin keeps this about behaviour, not speed.
    assert arrivals[-1] - arrivals[0] > 0.6
    [rec] = wait_final(app, 1)
    assert rec["llm"]["streamed"] is True
    assert rec["llm"]["response"]["content"][0]["text"] == "".join(words)
    assert "event: message_stop" in rec["responseBody"]


async def test_proxy_refuses_llmtaps_own_api_port(proxied: tuple[Llmtap, FakeUpstream]) -> None:
    app, _ = proxied
    async with http_client(app) as http:
        resp = await http.get(f"http://127.0.0.1:{app.port}/api/providers")
    assert resp.status_code == 403
    assert "own API port" in resp.json()["error"]["message"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_llmtap_run_curl(tmp_path: Path) -> None:
    # `llmtap run` exempts localhost/127.0.0.1 from the proxy (NO_PROXY), so this upstream
    # listens on another loopback address with a certificate for it.
    tls = tls_cert_for(tmp_path, hosts=("127.0.0.2",), name="curl")
    async with FakeUpstream(ssl_context=tls.server_context(), host="127.0.0.2") as upstream:
        app = start_llmtap(tmp_path / "data", "--upstream-ca", str(tls.ca_pem))
        try:
            upstream.script(Reply.text("curl says hi"))
            body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
            argv = llmtap_argv(
                "run", "--data-dir", str(app.data_dir), "--port", str(app.port), "--",
                "curl", "-sS", "-H", "content-type: application/json", "-d", body,
                upstream.url + "/v1/chat/completions",
            )  # fmt: skip
            out = await asyncio.to_thread(
                subprocess.run, argv, env=app.env, capture_output=True, text=True, timeout=60
            )
            assert out.returncode == 0, out.stderr
            assert json.loads(out.stdout)["choices"][0]["message"]["content"] == "curl says hi"
            [rec] = wait_final(app, 1)
            assert (rec["host"], rec["source"]) == ("127.0.0.2", "http-proxy")
            # A whole reply is the response body; llm.response holds no second copy of it.
            assert rec["llm"]["response"] is None
            reply = json.loads(rec["responseBody"])
            assert reply["choices"][0]["message"]["content"] == "curl says hi"
        finally:
            assert app.stop() == 0, app.log()


async def test_tls_intercept_off_records_one_tunnel(proxied: tuple[Llmtap, FakeUpstream]) -> None:
    app, upstream = proxied
    resp = app.api("POST", f"{INSPECTOR}/capture-modes/tls-intercept", json={"enabled": False})
    assert resp.status_code == 200, resp.text
    assert resp.json()["httpProxy"]["tlsIntercept"] is False
    # The client must now trust the *upstream's* certificate: nothing is decrypted.
    ctx = ssl.create_default_context(cafile=str(_upstream_ca(app)))
    async with httpx.AsyncClient(proxy=f"http://127.0.0.1:{app.proxy_port}", verify=ctx) as http:
        r = await http.post(
            upstream.url.replace("127.0.0.1", "localhost") + "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
        )
        assert r.status_code == 200
    [rec] = wait_final(app, 1)
    assert rec["method"] == "CONNECT"
    assert rec["host"] == "localhost"
    assert rec["requestSize"] > 0 and rec["responseSize"] > 0
    assert "bytes" in rec["note"]


async def test_http_proxy_port_taken_is_409_naming_the_holder(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        app = start_llmtap(tmp_path / "data", proxy_port=taken)
        try:
            resp = app.api(
                "POST", f"{INSPECTOR}/capture-modes/http-proxy", json={"action": "start"}
            )
            assert resp.status_code == 409, resp.text
            message = resp.json()["error"]["message"]
            assert f"port {taken}" in message and "python" in message.lower()
            state = app.api("GET", f"{INSPECTOR}/capture-modes").json()
            assert state["httpProxy"]["active"] is False
        finally:
            assert app.stop() == 0


def _upstream_ca(app: Llmtap) -> Path:
    """The fixture passed --upstream-ca on the command line: read it back from there."""
    args = app.proc.args
    assert isinstance(args, list)
    return Path(args[args.index("--upstream-ca") + 1])


async def test_custom_host_kind_wins_and_tags_the_source(
    proxied: tuple[Llmtap, FakeUpstream],
) -> None:
    app, upstream = proxied
    resp = app.api(
        "POST", f"{INSPECTOR}/hosts", json={"host": "localhost", "kind": "app", "label": "mine"}
    )
    assert resp.status_code == 201, resp.text
    upstream.script(Reply.text("looks like llm, is app"))
    async with http_client(app) as http:
        r = await http.post(
            upstream.url.replace("127.0.0.1", "localhost") + "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
        )
        assert r.status_code == 200
    [rec] = wait_final(app, 1)
    assert (rec["detectedKind"], rec["source"]) == ("app", "custom-host")
    modes = app.api("GET", f"{INSPECTOR}/capture-modes").json()
    assert modes["customHosts"]["count"] == 1 and modes["customHosts"]["partial"] is True
