"""HTTP/2 through the divert: an HTTP/2 client (the ``h2`` library over asyncio TLS, offering
``h2`` first in ALPN as Node, Bun, curl and browsers do) through the :8080 proxy and straight
at the :443 bridge with SNI = the agent's host gets the router's answer in every divertable
format, a streamed and a whole answer multiplexed on one connection.

(httpx is not used: it offers ``http/1.1`` before ``h2``, and mitmproxy, which with a lazy
upstream connection has no server preference to mirror, honours the client's order.)"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events

from tests.addons.agentstack import Stack
from tests.addons.agentstack import stack as stack  # the fixture this module uses
from tests.addons.test_divert_e2e import (
    CASES,
    WORDS,
    Case,
    check_answer,
    check_diverted,
    final_records,
)
from tests.addons.test_http_proxy import ca_file, records
from tests.fakes.upstream import Reply

MAX_READS = 10_000  # bounds the read loop; each read waits at most READ_TIMEOUT_S
READ_TIMEOUT_S = 30.0


@dataclass
class Answer:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False

    @property
    def text(self) -> str:
        return self.body.decode()


async def h2_calls(
    connect: tuple[str, int],
    authority: str,
    requests: list[tuple[str, bytes]],
    cafile: Path,
    *,
    via_proxy: bool,
) -> tuple[str, list[Answer]]:
    """POST each (path, body) as its own stream on ONE HTTP/2 connection to ``authority``;
    returns the negotiated ALPN and the answers in order."""
    reader, writer = await asyncio.open_connection(*connect)
    try:
        if via_proxy:
            writer.write(
                f"CONNECT {authority}:443 HTTP/1.1\r\nHost: {authority}:443\r\n\r\n".encode()
            )
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            assert b" 200 " in head.split(b"\r\n", 1)[0] + b" ", head
        ctx = ssl.create_default_context(cafile=str(cafile))
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        await writer.start_tls(ctx, server_hostname=authority)
        alpn = writer.get_extra_info("ssl_object").selected_alpn_protocol()
        if alpn != "h2":
            return str(alpn), []
        conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        conn.initiate_connection()
        answers: dict[int, Answer] = {}
        for path, body in requests:
            sid = conn.get_next_available_stream_id()
            answers[sid] = Answer()
            conn.send_headers(
                sid,
                [
                    (":method", "POST"),
                    (":scheme", "https"),
                    (":authority", authority),
                    (":path", path),
                    ("content-type", "application/json"),
                    ("content-length", str(len(body))),
                    ("authorization", "Bearer agent-own-token-0123456789"),
                ],
            )
            conn.send_data(sid, body, end_stream=True)
        writer.write(conn.data_to_send())
        await writer.drain()
        for _ in range(MAX_READS):
            if all(a.ended for a in answers.values()):
                break
            data = await asyncio.wait_for(reader.read(65536), READ_TIMEOUT_S)
            if not data:
                break
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    headers = dict(event.headers)
                    answers[event.stream_id].status = int(headers.pop(":status"))
                    answers[event.stream_id].headers = headers
                elif isinstance(event, h2.events.DataReceived):
                    answers[event.stream_id].body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    answers[event.stream_id].ended = True
                elif isinstance(event, h2.events.StreamReset):
                    raise AssertionError(f"stream {event.stream_id} reset: {event.error_code}")
            writer.write(conn.data_to_send())
            await writer.drain()
        assert all(a.ended for a in answers.values()), answers
        return alpn, [answers[sid] for sid in sorted(answers)]
    finally:
        writer.close()


def requests_for(case: Case) -> list[tuple[str, bytes]]:
    return [
        (case.url_path(stream), json.dumps(case.body(stream)).encode()) for stream in (False, True)
    ]


async def check_case(
    stack: Stack, case: Case, alpn: str, answers: list[Answer], source: str
) -> None:
    assert alpn == "h2", alpn
    for stream, answer in zip((False, True), answers, strict=True):
        check_answer(case, stream, answer.status, answer.headers, answer.text)
    recs = final_records(stack.app, case.host, 2)
    for stream in (False, True):
        rec = next(r for r in recs if r["llm"]["streamed"] is stream)
        check_diverted(stack, case, stream, rec, source)


async def test_http2_client_through_the_proxy_is_diverted(stack: Stack) -> None:
    for case in CASES:
        stack.map(case.agent, [("*", case.target)])
    for case in CASES:
        stack.upstream.script(*[Reply.text("".join(WORDS), chunks=WORDS) for _ in range(2)])
        alpn, answers = await h2_calls(
            ("127.0.0.1", stack.app.proxy_port),
            case.host,
            requests_for(case),
            ca_file(stack.app),
            via_proxy=True,
        )
        await check_case(stack, case, alpn, answers, "http-proxy")
    assert len(records(stack.app)) == 2 * len(CASES)
    assert stack.origin.requests == []


async def test_http2_client_at_the_bridge_is_diverted(stack: Stack) -> None:
    for case in CASES:
        stack.map(case.agent, [("*", case.target)])
    for case in CASES:
        stack.upstream.script(*[Reply.text("".join(WORDS), chunks=WORDS) for _ in range(2)])
        # What the hosts-file line does for a real agent: its host is reached on loopback,
        # with SNI and :authority still the agent's host.
        alpn, answers = await h2_calls(
            ("127.0.0.1", stack.bridge_port),
            case.host,
            requests_for(case),
            ca_file(stack.app),
            via_proxy=False,
        )
        await check_case(stack, case, alpn, answers, "agent-bridge")
    assert len(records(stack.app)) == 2 * len(CASES)
    assert stack.origin.requests == []
