"""A stream that fails after content reached the client is a failed call in the call log and in
the usage analytics, though the client's HTTP status was 200 (the error went in-band)."""

from __future__ import annotations

import httpx

from tests.fakes.upstream import Reply
from tests.web.harness import Server

USER = [{"role": "user", "content": "hi"}]


async def test_in_band_failure_counts_as_failed(server: Server) -> None:
    before = {r["id"] for r in await server.call_logs()}
    server.upstream.script(Reply.text("one two three four", cut_after=2), Reply.text("fine"))
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        body = {"model": server.model("oa"), "messages": USER, "stream": True}
        cut = await client.post("/v1/chat/completions", json=body)
        assert cut.status_code == 200  # the headers went out with the first content
        assert '"error"' in cut.text  # then the failure, in-band
        ok = await client.post("/v1/chat/completions", json={**body, "stream": False})
        assert ok.status_code == 200
    rows = await server.new_call_logs(before)
    for _ in range(100):  # both rows, however the writer batches them (bounded)
        if len(rows) == 2:
            break
        rows = await server.new_call_logs(before)
    by_outcome = {r["outcome"]: r for r in rows}
    assert set(by_outcome) == {"failed", "ok"}, rows
    failed = by_outcome["failed"]
    assert failed["status"] == 200 and failed["error"]
    assert by_outcome["ok"]["error"] is None

    data = (await server.api("GET", "/api/usage/analytics", params={"period": "day"})).json()
    assert data["totals"]["requests"] == 2
    assert data["totals"]["errors"] == 1
    assert sum(b["errors"] for b in data["byModel"].values()) == 1
