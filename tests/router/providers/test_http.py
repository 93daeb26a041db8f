"""The shared client and the call API: TLS trust, timeouts, broken streams, cancellation."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from pathlib import Path

import pytest

from router.errors import BadRequest, UpstreamError
from router.providers import load_upstream_ca, make_client, open_call, upstream_ssl_context
from router.store.records import ProviderConnection
from tests.fakes.fixtures import tls_cert_for
from tests.fakes.upstream import FakeUpstream, Reply

BODY = {"model": "m-1", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def conn_for(url: str, kind: str = "openai") -> ProviderConnection:
    return ProviderConnection(id="c1", provider=kind, name="up", url=f"{url}/v1", api_key="k" * 20)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------- upstream CA


async def test_tls_needs_upstream_ca(tls_fake_upstream: tuple[FakeUpstream, Path]) -> None:
    upstream, ca = tls_fake_upstream
    conn = conn_for(upstream.url)
    async with make_client() as plain:
        with pytest.raises(UpstreamError) as info:
            await open_call(plain, conn, "m-1", BODY, stream=True)
    assert info.value.kind == "connection"
    assert "TLS verification failed" in info.value.message
    assert isinstance(info.value.__cause__, Exception)
    async with (
        make_client(upstream_ca=ca) as trusting,
        await open_call(trusting, conn, "m-1", BODY, stream=True) as call,
    ):
        raw = b"".join([c async for c in call.chunks()])
    assert raw.endswith(b"data: [DONE]\n\n")
    assert upstream.requests[-1].headers["x-llmtap-origin"] == "router"


def test_upstream_ca_is_added_to_system_roots(tmp_path: Path) -> None:
    ca = tls_cert_for(tmp_path).ca_pem
    system = ssl.create_default_context().cert_store_stats()["x509_ca"]
    ctx = upstream_ssl_context(ca)
    assert ctx.cert_store_stats()["x509_ca"] == system + 1
    if ssl.get_default_verify_paths().cafile:  # a system bundle is present on this machine
        assert ctx.cert_store_stats()["x509_ca"] > 1
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


def test_upstream_ca_validation(tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="does not exist") as info:
        load_upstream_ca(tmp_path / "missing.pem")
    assert info.value.details[0].field == "upstreamCa"
    with pytest.raises(BadRequest, match="not a file"):
        load_upstream_ca(tmp_path)
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
    with pytest.raises(BadRequest, match="no valid PEM certificate"):
        make_client(upstream_ca=junk)
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    with pytest.raises(BadRequest, match="no valid PEM certificate"):
        load_upstream_ca(empty)
    good = tls_cert_for(tmp_path).ca_pem
    assert load_upstream_ca(good).startswith("-----BEGIN CERTIFICATE-----")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_upstream_ca_unreadable(tmp_path: Path) -> None:
    ca = tls_cert_for(tmp_path).ca_pem
    ca.chmod(0)
    with pytest.raises(BadRequest, match="not readable"):
        load_upstream_ca(ca)


async def test_the_system_roots_load_in_a_worker_thread_before_the_first_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsing the system's certificates is kept off the start-up path and off the event
    loop: a worker thread loads them, once, and the first call waits for them."""
    import threading

    from router.providers import session as session_mod

    threads: list[str] = []
    original = session_mod._load_system_roots

    def load(ctx: ssl.SSLContext) -> None:
        threads.append(threading.current_thread().name)
        original(ctx)

    monkeypatch.setattr(session_mod, "_load_system_roots", load)
    tls = tls_cert_for(tmp_path)
    async with (
        FakeUpstream(ssl_context=tls.server_context()) as upstream,
        make_client(upstream_ca=tls.ca_pem) as client,
    ):
        assert threads == []  # nothing parsed while the session is built
        for _ in range(2):
            async with await open_call(
                client, conn_for(upstream.url), "m-1", BODY, stream=True
            ) as call:
                assert (await call.read()).endswith(b"data: [DONE]\n\n")
    assert len(threads) == 1 and threads[0] != threading.main_thread().name


async def test_the_environments_proxy_is_read_once_and_honoured(
    fake_upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP(S)_PROXY and NO_PROXY apply to upstream calls; they are read when the session is
    made, not on every call in worker-thread hops (aiohttp's trust_env does that: two thread
    round trips per call)."""
    from concurrent.futures import ThreadPoolExecutor

    unreachable = conn_for(f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("HTTP_PROXY", fake_upstream.url)  # the fake answers as the proxy
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    submits = 0
    original = ThreadPoolExecutor.submit

    def submit(self: ThreadPoolExecutor, *args: object, **kw: object) -> object:
        nonlocal submits
        submits += 1
        return original(self, *args, **kw)  # type: ignore[arg-type]

    async with make_client() as client:
        async with await open_call(client, unreachable, "m-1", BODY, stream=True) as call:
            await call.read()  # warm: the system roots load once
        monkeypatch.setattr(ThreadPoolExecutor, "submit", submit)
        for _ in range(3):
            async with await open_call(client, unreachable, "m-1", BODY, stream=True) as call:
                assert (await call.read()).endswith(b"data: [DONE]\n\n")
        monkeypatch.setattr(ThreadPoolExecutor, "submit", original)
    assert submits == 0
    assert fake_upstream.requests[-1].path == "/v1/chat/completions"
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with make_client() as client:
        with pytest.raises(UpstreamError) as info:
            await open_call(client, unreachable, "m-1", BODY, stream=True)
    assert info.value.kind == "connection"


# ---------------------------------------------------------------------- transport failures


async def test_connection_refused() -> None:
    conn = conn_for(f"http://127.0.0.1:{closed_port()}")
    async with make_client() as client:
        with pytest.raises(UpstreamError) as info:
            await open_call(client, conn, "m-1", BODY, stream=True)
    err = info.value
    assert err.kind == "connection" and err.retryable and err.breaker_worthy
    assert err.message.startswith("up (openai) connection failed")
    assert "k" * 20 not in err.message


async def test_first_byte_timeout(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script(Reply.text("late", delay_first=60))
    async with make_client() as client:
        with pytest.raises(UpstreamError) as info:
            await open_call(
                client,
                conn_for(fake_upstream.url),
                "m-1",
                BODY,
                stream=True,
                first_byte_timeout=0.2,
            )
    assert info.value.kind == "timeout" and info.value.status == 504
    assert "no response within 0.2s" in info.value.message
    # The abandoned request does not linger on the upstream.
    await asyncio.wait_for(fake_upstream.disconnected.wait(), 10)


async def test_idle_timeout_mid_stream(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script(Reply.text("one two three", chunk_delay=60))
    got: list[bytes] = []
    async with make_client() as client:
        call = await open_call(
            client, conn_for(fake_upstream.url), "m-1", BODY, stream=True, idle_timeout=0.2
        )
        with pytest.raises(UpstreamError) as info:
            async for chunk in call.chunks():
                got.append(chunk)
    assert info.value.kind == "timeout"
    assert "mid-response" in info.value.message
    assert b"chat.completion.chunk" in b"".join(got)
    await asyncio.wait_for(fake_upstream.disconnected.wait(), 10)


async def failed_read(upstream: FakeUpstream, reply: Reply, *, stream: bool) -> UpstreamError:
    """What reading ``reply`` raises: the whole body of a stream, the JSON of a non-stream."""
    upstream.script(reply)
    async with make_client() as client:
        call = await open_call(client, conn_for(upstream.url), "m-1", BODY, stream=stream)
        with pytest.raises(UpstreamError) as info:
            await (call.read() if stream else call.read_json())
    return info.value


async def test_stream_cut_is_connection_error(fake_upstream: FakeUpstream) -> None:
    err = await failed_read(fake_upstream, Reply.text("a b c d e f g", cut_after=2), stream=True)
    assert err.kind == "connection"
    assert "mid-response" in err.message


async def test_read_json_rejects_non_json(fake_upstream: FakeUpstream) -> None:
    html = Reply.raw("<html>hi</html>", headers={"Content-Type": "text/html"})
    err = await failed_read(fake_upstream, html, stream=False)
    assert err.kind == "protocol"
    assert "text/html" in err.message


async def test_cancel_closes_upstream(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script(Reply.text(" ".join(["tok"] * 500), chunk_delay=0.05))
    first = asyncio.Event()

    async def consume(call_chunks: object) -> None:
        async for _ in call_chunks:  # type: ignore[attr-defined]
            first.set()

    async with make_client() as client:
        call = await open_call(client, conn_for(fake_upstream.url), "m-1", BODY, stream=True)
        task = asyncio.create_task(consume(call.chunks()))
        await asyncio.wait_for(first.wait(), 10)
        assert not fake_upstream.disconnected.is_set()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(fake_upstream.disconnected.wait(), 10)
    assert fake_upstream.connections_closed == 1


async def test_bytes_body_is_sent_verbatim(fake_upstream: FakeUpstream) -> None:
    raw = b'{"model":"m-1",  "messages":[],"vendor_field":{"x":1}}'
    async with make_client() as client:
        call = await open_call(client, conn_for(fake_upstream.url), "m-1", raw, stream=False)
        async with call:
            body = await call.read_json()
    assert fake_upstream.requests[-1].body == raw
    assert body["choices"][0]["message"]["content"] == "Hello from fake upstream"


@pytest.mark.parametrize("url", ["not a url", "ftp://127.0.0.1:1", "http://127.0.0.1:99999"])
async def test_unusable_url(url: str) -> None:
    conn = ProviderConnection(id="c", provider="openai", name="bad", url=url, api_key=None)
    async with make_client() as client:
        with pytest.raises(UpstreamError) as info:
            await open_call(client, conn, "m-1", BODY, stream=False)
    assert info.value.kind == "connection"
    assert info.value.message.startswith("bad (openai) connection failed")


async def test_upstream_socket_has_nodelay(fake_upstream: FakeUpstream) -> None:
    """Nagle would hold a request's body back until its headers are ACKed (milliseconds per
    call); aiohttp turns it off on every connection, and this pins that it still does."""
    fake_upstream.script(Reply.text("a b c", chunk_delay=0.05))
    async with make_client() as client:
        call = await open_call(client, conn_for(fake_upstream.url), "m-1", BODY, stream=True)
        async with call:
            connection = call._response.connection
            assert connection is not None and connection.transport is not None
            sock = connection.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
