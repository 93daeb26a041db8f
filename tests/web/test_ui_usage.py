"""The Router view's usage part in a real headless Chromium against a real llmtap with the fake
upstream: charts per call group, the sortable, paged call log whose rows open the call in
Traffic, and "unknown" cost for unpriced models."""

from __future__ import annotations

import asyncio
import re

from tests.fakes.upstream import Reply
from tests.web.browser import UI, chat, open_router, screenshot


async def test_call_log_pages(ui: UI) -> None:
    from playwright.async_api import expect

    for i in range(27):
        ui.server.upstream.script(Reply.text(f"answer {i}"))
        resp = await ui.server.api(
            "POST",
            "/v1/chat/completions",
            json={"model": ui.server.model("oa"), "messages": [{"role": "user", "content": "x"}]},
        )
        assert resp.status_code == 200, resp.text
    logs: list[dict[str, object]] = []
    for _ in range(400):  # the store's writer flushes in the background
        logs = await ui.server.call_logs()
        if len(logs) >= 27:
            break
        await asyncio.sleep(0.05)
    assert len(logs) == 27
    await open_router(ui)
    await expect(ui.page.locator("#call-log tr.call")).to_have_count(25)
    await expect(ui.page.locator("#log-range")).to_have_text("1–25 of 27")
    await expect(ui.page.locator("#log-prev")).to_be_disabled()
    await ui.page.locator("#log-next").click()
    await expect(ui.page.locator("#call-log tr.call")).to_have_count(2)
    await expect(ui.page.locator("#log-range")).to_have_text("26–27 of 27")
    await expect(ui.page.locator("#log-next")).to_be_disabled()
    await ui.page.locator("#log-prev").click()
    await expect(ui.page.locator("#call-log tr.call")).to_have_count(25)


async def test_usage_chart_has_a_bar_per_call_group_and_the_log_sorts_and_opens_calls(
    ui: UI,
) -> None:
    from playwright.async_api import expect

    page, server = ui.page, ui.server
    before = {r["id"] for r in await server.call_logs()}
    for lane, usage in (
        ("oa", (10, 5, 0, 0, 0)),
        ("an", (200, 40, 0, 0, 0)),
        ("oa", (1, 1, 0, 0, 0)),
    ):
        server.upstream.script(Reply.text(f"from {lane}", usage=usage))
        await chat(server, server.model(lane), f"question for {lane}")
    logs = await server.new_call_logs(before)
    for _ in range(100):
        if len(logs) >= 3:
            break
        await asyncio.sleep(0.05)
        logs = await server.new_call_logs(before)
    assert len(logs) == 3
    await open_router(ui)
    usage = page.locator("#rt-usage")
    await expect(usage.locator("#u-requests")).to_have_text("3")
    await expect(usage.locator("#u-tokens")).to_have_text("211 / 46")
    # Per model, tokens: one bar segment per model in the current hour, heights by tokens.
    segs = usage.locator("rect.seg")
    await expect(segs).to_have_count(2)
    values = {
        await s.get_attribute("data-key"): float(await s.get_attribute("data-value") or 0)
        for s in await segs.all()
    }
    assert values == {"claude-sonnet-4": 240, "gpt-4o-mini": 17}
    await expect(usage.locator("#u-legend .legend-item")).to_have_count(2)
    # Per provider and per agent ("direct": these calls came straight to /v1).
    await page.locator("#u-group").select_option("provider")
    await expect(usage.locator("rect.seg")).to_have_count(2)
    await page.locator("#u-group").select_option("agent")
    await expect(usage.locator("rect.seg")).to_have_count(1)
    await expect(usage.locator("rect.seg")).to_have_attribute("data-key", "direct")
    await page.locator("#u-metric").select_option("requests")
    await expect(usage.locator("rect.seg")).to_have_attribute("data-value", "3")
    await page.locator("#u-group").select_option("combo")
    await expect(usage.locator("#u-chart")).to_contain_text("served by a combo")
    await page.locator("#u-group").select_option("model")
    await page.locator("#u-period").select_option("week")
    await expect(usage.locator("rect.seg")).to_have_count(2)
    await screenshot(ui, "usage", "#rt-usage")

    # The call log sorts by a column (server-side, across pages).
    table = page.locator("#call-log")
    await table.locator("th[data-sort=tokensIn]").click()
    await expect(table.locator("th[data-sort=tokensIn]")).to_have_attribute(
        "aria-sort", "descending"
    )
    await expect(table.locator("tr.call .c-tokens")).to_have_text(["200 / 40", "10 / 5", "1 / 1"])
    await table.locator("th[data-sort=tokensIn]").click()
    await expect(table.locator("tr.call .c-tokens")).to_have_text(["1 / 1", "10 / 5", "200 / 40"])
    await expect(table.locator("tr.call .c-status").first).to_have_text("200")

    # A row opens the call in the Traffic view (the call-log id is the record's id).
    (an_log,) = [r for r in logs if r["tokensIn"] == 200]
    await table.locator(f"tr.call[data-id='{an_log['id']}']").click()
    await expect(page.locator("#traffic-view")).to_be_visible()
    await expect(page.locator("#detail")).to_be_visible()
    await expect(page.locator(f"#flow-body tr.flow[data-id='{an_log['id']}']")).to_have_class(
        re.compile("selected")
    )
    await expect(page.locator("#detail")).to_contain_text("question for an")
    # A call the live buffer no longer holds: the log says so instead of opening nothing.
    clear = await server.api("DELETE", "/api/tools/traffic-inspector/requests")
    assert clear.status_code == 204, clear.text
    await open_router(ui)
    await page.locator(f"#call-log tr.call[data-id='{an_log['id']}']").click()
    await expect(page.locator("#log-note")).to_contain_text("no longer in the live buffer")
    await expect(page.locator("#router-view")).to_be_visible()
    assert ui.page_errors == []


async def test_a_model_without_a_price_shows_cost_unknown(ui: UI) -> None:
    """Issue 12: the call log's cost cell says "unknown" for an unpriced model, the total says
    how many calls it leaves out, and the cost chart labels the unpriced segment."""
    from playwright.async_api import expect

    page, server = ui.page, ui.server
    before = {r["id"] for r in await server.call_logs()}
    server.upstream.script(Reply.text("priced", usage=(1000, 500, 0, 0, 0)))
    await chat(server, server.model("oa"))
    server.upstream.script(Reply.text("unpriced", usage=(1000, 500, 0, 0, 0)))
    await chat(server, "oa/house-model-no-price")
    logs = await server.new_call_logs(before)
    for _ in range(100):
        if len(logs) >= 2:
            break
        await asyncio.sleep(0.05)
        logs = await server.new_call_logs(before)
    by_model = {r["model"]: r for r in logs}
    assert by_model["house-model-no-price"]["costUsd"] is None
    await open_router(ui)
    usage = page.locator("#rt-usage")
    await expect(usage.locator("#u-cost")).to_have_text(re.compile(r"^\$\S+ \+ 1 unpriced$"))
    table = page.locator("#call-log")
    unpriced_row = table.locator(f"tr.call[data-id='{by_model['house-model-no-price']['id']}']")
    await expect(unpriced_row.locator(".c-cost")).to_have_text("unknown")
    priced_row = table.locator(f"tr.call[data-id='{by_model['gpt-4o-mini']['id']}']")
    await expect(priced_row.locator(".c-cost")).to_have_text(re.compile(r"^\$0\.\d+$"))
    await page.locator("#u-metric").select_option("cost")
    unknown_seg = usage.locator("rect.seg[data-key='house-model-no-price']")
    await expect(unknown_seg).to_have_count(1)  # drawn, though it adds nothing to the sum
    await expect(unknown_seg.locator("title")).to_have_text(re.compile(r": unknown$"))
    legend = usage.locator("#u-legend .legend-item[data-key='house-model-no-price']")
    await expect(legend).to_contain_text("unknown")
    await expect(usage.locator(".chart-wrap")).to_contain_text("1 unpriced call(s)")
    assert ui.page_errors == []
