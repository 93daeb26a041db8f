"""The WebSocket snapshot is sent in bounded pages: a client with the common 1 MiB frame limit
gets the whole buffer (it used to be one frame of several MB, which such clients refuse)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import aiohttp

from tests.web.harness import Server
from web.security import INGEST_HEADER, ingest_token

P = "/api/tools/traffic-inspector"


async def test_snapshot_pages_fit_a_1_mib_frame_limit(server: Server) -> None:
    token = ingest_token(server.runtime.settings.data_dir)
    ids = []
    for n in range(24):  # 24 x ~300 KB: about 7 MB of snapshot
        rid = str(uuid.uuid4())
        ids.append(rid)
        record = {
            "id": rid, "source": "http-proxy", "timestamp": datetime.now(UTC).isoformat(),
            "method": "POST", "host": "example.com", "path": f"/{n}", "status": 200,
            "requestBody": "plain words " * 25_000,
        }  # fmt: skip
        resp = await server.api(
            "POST", P + "/internal/ingest", json=record, headers={INGEST_HEADER: token}
        )
        assert resp.status_code == 200, resp.text
    got: list[str] = []
    pages = 0
    async with (
        aiohttp.ClientSession() as client,
        client.ws_connect(server.url + P + "/ws", max_msg_size=1 << 20) as ws,
    ):
        while True:
            msg = await ws.receive(timeout=30)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg  # an oversized frame is an ERROR
            assert len(msg.data.encode()) <= 1 << 20
            frame = json.loads(msg.data)
            assert frame["type"] == "snapshot" and frame["page"] == pages
            pages += 1
            got += [r["id"] for r in frame["data"]]
            if not frame["more"]:
                break
    assert pages > 1
    assert sorted(got) == sorted(ids)
