"""/api/usage (call logs, analytics) and /api/pricing (the effective table, overrides)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.upstream import Reply
from tests.web.harness import Server
from tests.web.manage import assert_error


async def chat(server: Server, model: str, usage: tuple[int, ...] = (1000, 500, 0, 0, 0)) -> str:
    server.upstream.script(Reply.text("ok", usage=usage))
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    resp = await server.api("POST", "/v1/chat/completions", json=body)
    assert resp.status_code == 200, resp.text
    return resp.headers["x-omniroute-request-id"]


async def test_call_logs_paging_and_one(server: Server) -> None:
    ids = [await chat(server, server.model("oa")) for _ in range(3)]
    assert server.runtime.writer.flush(timeout=10)
    page = (await server.api("GET", "/api/usage/call-logs", params={"limit": 2})).json()
    assert page["total"] == 3 and (page["limit"], page["offset"]) == (2, 0)
    assert len(page["logs"]) == 2
    rest = (
        await server.api("GET", "/api/usage/call-logs", params={"limit": 2, "offset": 2})
    ).json()
    assert {r["id"] for r in page["logs"] + rest["logs"]} == set(ids)

    one = (await server.api("GET", f"/api/usage/call-logs/{ids[0]}")).json()
    assert one["requestedModel"] == server.model("oa") and one["provider"] == "oa"
    assert (one["tokensIn"], one["tokensOut"], one["status"]) == (1000, 500, 200)
    assert one["sourceFormat"] == "openai-chat" and one["costUsd"] > 0
    assert_error(await server.api("GET", "/api/usage/call-logs/nope"), 404)


async def test_a_call_its_client_saw_finish_is_in_the_usage_api_at_once(server: Server) -> None:
    """Read your writes: no flush by the caller, no polling; the API commits what is queued."""
    call = await chat(server, server.model("oa"))
    page = (await server.api("GET", "/api/usage/call-logs")).json()
    assert [r["id"] for r in page["logs"]] == [call]
    assert (await server.api("GET", f"/api/usage/call-logs/{call}")).status_code == 200
    week = (await server.api("GET", "/api/usage/analytics")).json()
    assert week["totals"]["requests"] == 1, week["totals"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "ten"}, "limit"),
        ({"limit": 0}, "limit"),
        ({"limit": 5000}, "limit"),
        ({"offset": -1}, "offset"),
        ({"sort": "id"}, "sort"),
        ({"sort": "--costUsd"}, "sort"),
    ],
)
async def test_call_logs_bad_paging(server: Server, params: dict[str, Any], field: str) -> None:
    assert_error(await server.api("GET", "/api/usage/call-logs", params=params), 400, field)


async def test_analytics(server: Server) -> None:
    await chat(server, server.model("oa"), (100, 10, 0, 0, 0))
    await chat(server, server.model("an"), (200, 20, 0, 0, 0))
    assert server.runtime.writer.flush(timeout=10)
    for period in ("day", "week", "month"):
        data = (await server.api("GET", "/api/usage/analytics", params={"period": period})).json()
        assert data["period"] == period
        assert data["totals"]["requests"] == 2 and data["totals"]["tokensIn"] == 300
        assert set(data["byProvider"]) == {"oa", "an"}
        assert data["byProvider"]["an"]["tokensOut"] == 20
        assert {p["key"] for p in data["providerSeries"]} == {"oa", "an"}
    assert_error(
        await server.api("GET", "/api/usage/analytics", params={"period": "year"}), 400, "period"
    )
    hourly = (
        await server.api("GET", "/api/usage/analytics", params={"period": "day", "bucket": "hour"})
    ).json()
    assert {p["bucket"][13:] for p in hourly["modelSeries"]} == {":00Z"}
    assert hourly["byAgent"]["direct"]["requests"] == 2 and hourly["byCombo"] == {}
    assert_error(
        await server.api("GET", "/api/usage/analytics", params={"bucket": "minute"}), 400, "bucket"
    )


async def test_a_model_without_a_price_costs_unknown_not_zero(server: Server) -> None:
    """Issue 12: an unpriced call logs cost null, carries no cost header, and the totals sum
    the priced calls and count the unpriced ones, so a total is never silently low."""
    priced = await chat(server, server.model("oa"), (1000, 500, 0, 0, 0))
    server.upstream.script(Reply.text("ok", usage=(1000, 500, 0, 0, 0)))
    body = {"model": "oa/house-model-no-price", "messages": [{"role": "user", "content": "hi"}]}
    resp = await server.api("POST", "/v1/chat/completions", json=body)
    assert resp.status_code == 200, resp.text
    assert "x-omniroute-response-cost" not in resp.headers  # "0" would read as free
    unpriced = resp.headers["x-omniroute-request-id"]
    assert server.runtime.writer.flush(timeout=10)
    logs = {r["id"]: r for r in (await server.api("GET", "/api/usage/call-logs")).json()["logs"]}
    assert logs[unpriced]["costUsd"] is None and logs[unpriced]["tokensIn"] == 1000
    assert logs[priced]["costUsd"] > 0
    one = (await server.api("GET", f"/api/usage/call-logs/{unpriced}")).json()
    assert one["costUsd"] is None
    data = (await server.api("GET", "/api/usage/analytics", params={"period": "day"})).json()
    totals = data["totals"]
    assert totals["requests"] == 2 and totals["unpriced"] == 1
    assert totals["costUsd"] == pytest.approx(logs[priced]["costUsd"])
    assert data["byModel"]["house-model-no-price"]["unpriced"] == 1
    assert data["byModel"]["house-model-no-price"]["costUsd"] == 0
    assert data["byModel"]["gpt-4o-mini"]["unpriced"] == 0
    assert sum(p["unpriced"] for p in data["modelSeries"]) == 1
    # The inspector's record of the call says unknown too (null, not 0).
    record = await server.api("GET", f"/api/tools/traffic-inspector/requests/{unpriced}")
    assert record.status_code == 200 and record.json()["llm"]["costUsd"] is None


async def test_call_logs_sorted_by_a_column(server: Server) -> None:
    small = await chat(server, server.model("oa"), (5, 1, 0, 0, 0))
    large = await chat(server, server.model("oa"), (500, 1, 0, 0, 0))
    assert server.runtime.writer.flush(timeout=10)
    for sort, first in (("-tokensIn", large), ("tokensIn", small), ("costUsd", small)):
        page = await server.api("GET", "/api/usage/call-logs", params={"sort": sort, "limit": 1})
        assert page.status_code == 200, page.text
        assert page.json()["logs"][0]["id"] == first, sort


async def test_pricing_table_and_override_changes_cost(server: Server) -> None:
    table = (await server.api("GET", "/api/pricing")).json()["prices"]
    seed = {p["model"]: p for p in table}
    assert "gpt-4o-mini" in seed and seed["gpt-4o-mini"]["source"] == "seed"
    assert all(p["input"] >= 0 and p["output"] >= 0 for p in table)

    override = {"model": "gpt-4o-mini", "input": 1000.0, "output": 2000.0}
    resp = await server.api("POST", "/api/pricing", json=override)
    assert resp.status_code == 200, resp.text
    after = {p["model"]: p for p in (await server.api("GET", "/api/pricing")).json()["prices"]}
    assert after["gpt-4o-mini"]["source"] == "override" and after["gpt-4o-mini"]["input"] == 1000.0
    # The running router prices with the new table at once: 1M in + 1M out = $3000.
    await chat(server, server.model("oa"), (1_000_000, 1_000_000, 0, 0, 0))
    assert server.runtime.writer.flush(timeout=10)
    (row,) = (await server.api("GET", "/api/usage/call-logs", params={"limit": 1})).json()["logs"]
    assert row["costUsd"] == pytest.approx(3000.0)

    assert (await server.api("DELETE", "/api/pricing/gpt-4o-mini")).status_code == 200
    back = {p["model"]: p for p in (await server.api("GET", "/api/pricing")).json()["prices"]}
    assert back["gpt-4o-mini"] == seed["gpt-4o-mini"]
    assert_error(await server.api("DELETE", "/api/pricing/gpt-4o-mini"), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "m", "input": -1, "output": 1}, "input"),
        ({"model": "m", "input": 1, "output": 1, "cached": -0.5}, "cached"),
        ({"model": "m", "input": "cheap", "output": 1}, "input"),
        ({"model": "m", "input": 1}, "output"),
        ({"model": "m", "input": 1, "output": 1, "currency": "EUR"}, "currency"),
        ({"model": "", "input": 1, "output": 1}, "model"),
    ],
)
async def test_bad_price_writes_nothing(server: Server, body: dict[str, Any], field: str) -> None:
    before = (await server.api("GET", "/api/pricing")).json()
    assert_error(await server.api("POST", "/api/pricing", json=body), 400, field)
    assert (await server.api("GET", "/api/pricing")).json() == before


async def test_non_finite_price_rejected(server: Server) -> None:
    raw = b'{"model": "m", "input": NaN, "output": 1}'
    resp = await server.api(
        "POST", "/api/pricing", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_error(resp, 400, "input")
    assert "m" not in {
        p["model"] for p in (await server.api("GET", "/api/pricing")).json()["prices"]
    }
