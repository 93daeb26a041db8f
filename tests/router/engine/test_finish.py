"""When a router call's finish is observed, as seen from the client's own socket: a whole
reply's call-log row (a durable observer) is built once the reply is in the client's socket,
so it is not on the reply's path; a stream's row before the stream's end goes out."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from router.engine import CallInfo
from tests.fakes.upstream import Reply
from tests.web.harness import Server, server

__all__ = ["server"]  # the fixture


async def _call_and_peek(server: Server, *, stream: bool) -> bytes:
    """POST a chat call over a raw socket; return what the client's socket held, unread,
    when the router's durable observers saw the call finish."""
    body = json.dumps(
        {
            "model": "oa/gpt-4o-mini",
            "stream": stream,
            "messages": [{"role": "user", "content": "hi"}],
        }
    ).encode()
    port = int(server.url.rpartition(":")[2])
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    seen: list[bytes] = []
    done = asyncio.Event()

    def observer(info: CallInfo, phase: str) -> None:
        if phase == "finish":
            try:
                seen.append(sock.recv(1 << 20, socket.MSG_PEEK | socket.MSG_DONTWAIT))
            except BlockingIOError:
                seen.append(b"")
            done.set()

    server.runtime.router.durable_observers.append(observer)
    try:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        sock.setblocking(False)  # the peek must not wait for data (a timeout socket would)
        await asyncio.wait_for(done.wait(), 10)
    finally:
        server.runtime.router.durable_observers.remove(observer)
        sock.close()
    return seen[0]


async def test_a_whole_replys_row_is_built_after_the_reply_reached_the_client(
    server: Server,
) -> None:
    server.upstream.script(Reply.text("all of it"))
    held = await _call_and_peek(server, stream=False)
    head, _, body = held.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), held[:200]
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    assert len(body) == length  # the whole reply, not a part of it
    assert json.loads(body)["choices"][0]["message"]["content"] == "all of it"


@pytest.mark.parametrize("chunks", [1, 3])
async def test_a_streams_row_is_built_before_its_end_goes_out(server: Server, chunks: int) -> None:
    server.upstream.script(Reply.text(" ".join(["word"] * chunks)))
    held = await _call_and_peek(server, stream=True)
    assert held.startswith(b"HTTP/1.1 200"), held[:200]
    assert b"data: [DONE]" in held  # the last event is out ...
    assert not held.endswith(b"0\r\n\r\n")  # ... the end of the chunked body is not
