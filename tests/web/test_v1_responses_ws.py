"""The Responses API over a WebSocket (``GET /v1/responses`` upgraded), as Codex speaks it.

The real Codex binary runs it in ``tests/agents/test_direct.py``; here each rule of the
protocol on its own, with aiohttp's WebSocket client and the fake upstream of each format.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.upstream import Reply, ToolCall
from tests.web.harness import LANES, Server

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]

TERMINAL = ("response.completed", "response.incomplete", "response.failed", "error")


def _user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def _create(model: str, *items: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"type": "response.create", "model": model, "input": list(items), **fields}


async def _answer(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """The events of one answer, up to and including its terminal one."""
    events: list[dict[str, Any]] = []
    async for msg in ws:
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        events.append(json.loads(msg.data))
        if events[-1]["type"] in TERMINAL:
            return events
    raise AssertionError(f"socket closed mid-answer: {events}")


async def _socket(server: Server) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(server.url + "/v1/responses") as ws,
    ):
        yield ws


@pytest.mark.parametrize("lane", LANES)
async def test_a_conversation_continues_on_the_socket(shared_server: Server, lane: str) -> None:
    """Codex's pattern: a prewarm (``generate: false``, no model call), then a request that
    continues from it, a tool call, and the tool result sent as only the new items with
    ``previous_response_id``; the upstream (its own format) sees the whole conversation."""
    upstream = shared_server.upstream
    upstream.script(
        Reply.tools([ToolCall("call_1", "read", '{"path": "a.txt"}')]),
        Reply.text("It says pineapple."),
    )
    model = shared_server.model(lane)
    tools = [{"type": "function", "name": "read", "parameters": {"type": "object"}}]
    async for ws in _socket(shared_server):
        await ws.send_json(_create(model, _user("read a.txt"), tools=tools, generate=False))
        warm = await _answer(ws)
        assert [e["type"] for e in warm] == ["response.created", "response.completed"]
        assert upstream.requests == []  # a prewarm calls no model
        warm_id = warm[-1]["response"]["id"]

        await ws.send_json(_create(model, tools=tools, previous_response_id=warm_id))
        first = await _answer(ws)
        assert first[-1]["type"] == "response.completed", first[-1]
        assert "response.function_call_arguments.delta" in [e["type"] for e in first]
        call = first[-1]["response"]["output"][-1]
        assert (call["type"], call["name"]) == ("function_call", "read")  # Gemini has no ids

        output = {"type": "function_call_output", "call_id": call["call_id"], "output": "pineapple"}
        previous = first[-1]["response"]["id"]
        await ws.send_json(_create(model, output, tools=tools, previous_response_id=previous))
        second = await _answer(ws)
        assert second[-1]["type"] == "response.completed", second[-1]
        text = "".join(e["delta"] for e in second if e["type"] == "response.output_text.delta")
        assert text == "It says pineapple."
        await ws.send_json({"type": "response.processed", "response_id": previous})
    turns = [json.dumps(r.json) for r in upstream.requests if r.method == "POST"]
    assert len(turns) == 2
    assert "read a.txt" in turns[0]
    # the whole conversation: the user's turn, the call, its result
    assert all(s in turns[1] for s in ("read a.txt", "path", "pineapple")), turns[1]


async def test_errors_come_as_error_messages_and_the_socket_stays(shared_server: Server) -> None:
    model = shared_server.model("an")
    shared_server.upstream.script(Reply.error(400, "bad things"))
    async for ws in _socket(shared_server):
        await ws.send_str("not json")
        bad = await _answer(ws)
        assert bad[-1]["type"] == "error" and bad[-1]["status"] == 400

        await ws.send_json(_create(model, _user("x"), previous_response_id="resp_unknown"))
        unknown = (await _answer(ws))[-1]
        assert (unknown["status"], unknown["error"]["code"]) == (400, "previous_response_not_found")

        await ws.send_json(_create("nobody/none", _user("x")))
        missing = (await _answer(ws))[-1]
        assert missing["type"] == "error" and missing["status"] == 404, missing

        await ws.send_json(_create(model, _user("x")))
        upstream_error = (await _answer(ws))[-1]
        assert upstream_error["type"] == "error" and upstream_error["status"] == 400

        shared_server.upstream.script(Reply.text("still here"))
        await ws.send_json(_create(model, _user("hello")))
        ok = await _answer(ws)
        assert ok[-1]["type"] == "response.completed"


async def test_a_plain_get_is_told_to_upgrade(shared_server: Server) -> None:
    """426 is what Codex reads as "this server speaks HTTP here": it falls back at once."""
    resp = await shared_server.api("GET", "/v1/responses")
    assert resp.status_code == 426, resp.text
    assert resp.json()["error"]["code"] == "websocket_upgrade_required"


async def test_a_browser_page_cannot_open_the_socket(shared_server: Server) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await session.ws_connect(
                shared_server.url + "/v1/responses", headers={"Origin": "https://evil.example"}
            )
    assert err.value.status == 403


async def test_a_provider_pinned_socket(shared_server: Server) -> None:
    shared_server.upstream.script(Reply.text("pinned"))
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(shared_server.url + "/v1/providers/an/responses") as ws,
    ):
        await ws.send_json(_create("claude-sonnet-4", _user("hi")))
        events = await _answer(ws)
    assert events[-1]["type"] == "response.completed", events[-1]
    assert shared_server.upstream.requests[-1].path.endswith("/messages")
