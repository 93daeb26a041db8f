"""A test secret sent every way a secret travels never lands anywhere we persist or emit: the
DB and its WAL, HAR and JSONL exports, WebSocket frames and logs."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime

import aiohttp
import pytest

from tests.fakes.upstream import Reply
from tests.web.harness import Server
from web.security import INGEST_HEADER, ingest_token

P = "/api/tools/traffic-inspector"
SECRET = "sk-llmtapcanary" + uuid.uuid4().hex  # fresh per run: no false hit from old files


async def test_the_secret_never_leaves_masked(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    frames: list[str] = []
    session = (await server.api("POST", P + "/sessions", json={"name": "canary"})).json()
    async with (
        aiohttp.ClientSession() as ws_client,
        ws_client.ws_connect(server.url + P + "/ws") as ws,
    ):
        frames.append((await ws.receive(timeout=30)).data)
        # 1. header + JSON body string, and the upstream streams the secret back in SSE text
        server.upstream.script(
            Reply.text(f"your key is {SECRET} ok"), Reply.text("fine"), Reply.text("fine")
        )
        # aiohttp as the test's client: httpx would log the secret URL itself
        async with aiohttp.ClientSession(base_url=server.url) as client:
            async with client.post(
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {SECRET}"},
                json={
                    "model": server.model("oa"),
                    "stream": True,
                    "messages": [{"role": "user", "content": f"remember {SECRET} please"}],
                },
            ) as resp:
                assert resp.status == 200 and SECRET in await resp.text()  # the client gets it
            # 2. query string (Gemini style key=) and x-api-key
            async with client.post(
                f"/v1beta/models/{server.model('ge')}:generateContent",
                params={"key": SECRET},
                headers={"x-api-key": SECRET},
                json={"contents": [{"role": "user", "parts": [{"text": f"k={SECRET}"}]}]},
            ) as resp:
                assert resp.status == 200
        # 3. a record from an external capture process, secrets in every field
        record = {
            "id": str(uuid.uuid4()),
            "source": "http-proxy",
            "timestamp": datetime.now(UTC).isoformat(),
            "method": "POST",
            "host": "api.anthropic.com",
            "path": f"/v1/messages?key={SECRET}&beta=true",
            "requestHeaders": {
                "authorization": f"Bearer {SECRET}",
                "x-api-key": SECRET,
                "cookie": f"session={SECRET}",
                "content-type": "application/json",
            },
            "requestBody": json.dumps({"model": "claude", "messages": [], "note": SECRET}),
            "responseHeaders": {"set-cookie": f"s={SECRET}", "content-type": "text/event-stream"},
            "responseBody": f'event: x\ndata: {{"text": "{SECRET}"}}\n\n',
            "status": 200,
            "error": f"failed with {SECRET}",
        }
        token = ingest_token(server.runtime.settings.data_dir)
        resp = await server.api(
            "POST", P + "/internal/ingest", json=record, headers={INGEST_HEADER: token}
        )
        assert resp.status_code == 200, resp.text
        for _ in range(5):  # new + update per router call, new for the ingest
            frames.append((await ws.receive(timeout=30)).data)

    records = (await server.api("GET", P + "/requests")).json()
    assert len(records) == 3
    annotate = await server.api(
        "PUT", f"{P}/requests/{records[0]['id']}/annotation", json={"annotation": f"saw {SECRET}"}
    )
    assert annotate.status_code == 200
    har = (await server.api("GET", P + "/export.har")).text
    jsonl = (await server.api("GET", P + "/export.jsonl")).text
    session_har = (await server.api("GET", f"{P}/sessions/{session['id']}/export.har")).text
    listed = json.dumps(records)
    assert len(json.loads(session_har)["log"]["entries"]) == 3
    assert server.runtime.session_writer is not None and server.runtime.session_writer.flush(10)
    server.runtime.writer.flush(10)

    db = server.runtime.settings.db_path
    wal = db.with_name(db.name + "-wal")
    stores = {"db": db.read_bytes(), "wal": wal.read_bytes() if wal.exists() else b""}
    assert stores["wal"] or stores["db"]
    # the masked form is there: the data really was stored and exported
    assert SECRET[:6].encode() in stores["db"] + stores["wal"]
    assert SECRET[:6] in har and SECRET[:6] in jsonl and SECRET[:6] in listed

    needle = SECRET.encode()
    for name, data in stores.items():
        assert needle not in data, name
    for name, text in [
        ("har", har),
        ("jsonl", jsonl),
        ("session har", session_har),
        ("list", listed),
    ]:
        assert SECRET not in text, name
    for frame in frames:
        assert SECRET not in frame
    assert len(frames) == 6
    assert SECRET not in caplog.text
    for rec in caplog.records:
        assert SECRET not in rec.getMessage()
