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
    for n in range(24):  # 24 x ~100 KB: about 2.4 MB of snapshot, records under a page each
        rid = str(uuid.uuid4())
        ids.append(rid)
        record = {
            "id": rid, "source": "http-proxy", "timestamp": datetime.now(UTC).isoformat(),
            "method": "POST", "host": "example.com", "path": f"/{n}", "status": 200,
            "requestBody": "plain words " * 8_000,
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


async def test_a_record_bigger_than_a_page_is_sent_without_its_bodies(server: Server) -> None:
    """One record of several MB, in the snapshot and as a live event: no frame is larger than a
    snapshot page; the frame says the record was cut, and the API still has all of it."""
    from web.ws import SNAPSHOT_PAGE_BYTES

    token = ingest_token(server.runtime.settings.data_dir)

    def big(n: int) -> dict[str, object]:
        return {
            "id": str(uuid.uuid4()), "source": "http-proxy",
            "timestamp": datetime.now(UTC).isoformat(), "method": "POST",
            "host": "example.com", "path": f"/big/{n}", "status": 200,
            "requestBody": "é request " * 50_000, "responseBody": "response " * 50_000,
        }  # fmt: skip

    async def ingest(record: dict[str, object]) -> None:
        resp = await server.api(
            "POST", P + "/internal/ingest", json=record, headers={INGEST_HEADER: token}
        )
        assert resp.status_code == 200, resp.text

    first, second = big(1), big(2)
    await ingest(first)
    frames: list[dict[str, object]] = []
    async with (
        aiohttp.ClientSession() as client,
        client.ws_connect(server.url + P + "/ws", max_msg_size=1 << 20) as ws,
    ):
        while True:  # the snapshot
            msg = await ws.receive(timeout=30)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            assert len(msg.data.encode()) <= SNAPSHOT_PAGE_BYTES
            frame = json.loads(msg.data)
            frames.append(frame)
            if not frame["more"]:
                break
        await ingest(second)  # a live event
        while True:
            msg = await ws.receive(timeout=30)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            assert len(msg.data.encode()) <= SNAPSHOT_PAGE_BYTES
            frame = json.loads(msg.data)
            if frame["type"] == "new":
                frames.append(frame)
                break
    sent = [r for f in frames for r in (f["data"] if f["type"] == "snapshot" else [f["data"]])]
    by_id = {r["id"]: r for r in sent}
    for record in (first, second):
        cut = by_id[record["id"]]
        assert cut["wsTruncated"] is True and cut["wsSize"] > SNAPSHOT_PAGE_BYTES
        assert "requestBody" not in cut and cut["path"] == record["path"]
        whole = (await server.api("GET", f"{P}/requests/{record['id']}")).json()
        assert whole["requestBody"] == record["requestBody"]
        assert "wsTruncated" not in whole
