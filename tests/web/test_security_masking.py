"""A secret pasted into a model name (``model: "x/echo-sk-..."``) is masked like any other
secret: not in call logs, session records, HAR/JSONL exports, WebSocket frames or the DB."""

from __future__ import annotations

import json
import uuid

import aiohttp

from tests.fakes.upstream import Reply
from tests.web.harness import Server

P = "/api/tools/traffic-inspector"
SECRET = "sk-modelcanary" + uuid.uuid4().hex


async def test_a_secret_in_the_model_name_is_masked_everywhere(server: Server) -> None:
    session = (await server.api("POST", P + "/sessions", json={"name": "model-canary"})).json()
    frames: list[str] = []
    server.upstream.script(Reply.text("routed"), Reply.text("routed"))
    async with (
        aiohttp.ClientSession() as ws_client,
        ws_client.ws_connect(server.url + P + "/ws") as ws,
    ):
        frames.append((await ws.receive(timeout=30)).data)
        async with aiohttp.ClientSession(base_url=server.url) as client:
            for model in (f"oa/echo-{SECRET}", f"x/echo-{SECRET}"):  # routed, and unknown
                async with client.post(
                    "/v1/chat/completions",
                    json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
                ) as resp:
                    await resp.read()
            async with client.post(
                "/v1/messages",
                json={
                    "model": f"an/{SECRET}",
                    "max_tokens": 5,
                    "stream": True,
                    "messages": [{"role": "user", "content": "hi"}],
                },
            ) as resp:
                await resp.read()
        # Until every call's final record has been broadcast (a call refused before it
        # started has only that one event).
        final: set[str] = set()
        while len(final) < 3:
            frames.append((await ws.receive(timeout=30)).data)
            frame = json.loads(frames[-1])
            if frame.get("type") in ("new", "update") and frame["data"]["status"] != "in-flight":
                final.add(frame["data"]["id"])

    records = (await server.api("GET", P + "/requests")).json()
    assert len(records) == 3
    logs = (await server.api("GET", "/api/usage/call-logs")).text
    har = (await server.api("GET", P + "/export.har")).text
    jsonl = (await server.api("GET", P + "/export.jsonl")).text
    session_har = (await server.api("GET", f"{P}/sessions/{session['id']}/export.har")).text
    assert server.runtime.session_writer is not None and server.runtime.session_writer.flush(10)
    server.runtime.writer.flush(10)
    db = server.runtime.settings.db_path
    wal = db.with_name(db.name + "-wal")
    stored = db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")

    # the (masked) model name is there: the data really was stored and listed
    requested = sorted(row["requestedModel"] for row in json.loads(logs)["logs"])
    assert requested == ["an/sk-mod…" + SECRET[-2:], "oa/echo…" + SECRET[-2:],
                         "x/echo…" + SECRET[-2:]]  # fmt: skip
    assert sorted(r["llm"]["model"] for r in records)[0] == "echo…" + SECRET[-2:]
    for name, text in [("call logs", logs), ("list", json.dumps(records)), ("har", har),
                       ("jsonl", jsonl), ("session har", session_har)]:  # fmt: skip
        assert SECRET not in text, name
    for frame in frames:
        assert SECRET not in frame
    assert SECRET.encode() not in stored
