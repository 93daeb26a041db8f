"""The Traffic view (issue 13) in a real headless Chromium against a real llmtap with the fake
upstream: search inside prompts, cut streams under "error", the virtualised list with 10,000
calls, sorting and resizing, the request as sent upstream, copy as curl (run against the
fake), edit and resend, context tints, the header at 1280 and 1024 px, no stray "null", the
WebSocket resync after a restart, a stored session after a restart, the login notice.

Set LLMTAP_SCREENSHOTS_DIR=docs/screenshots (scripts/screenshot does) to also write the
README's screenshots of these views.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from addons.webapp import WebApp
from router.traffic.record import InterceptedRequest
from tests.fakes.upstream import FakeUpstream, Reply
from tests.web.browser import SCREENSHOTS_ENV, UI
from tests.web.harness import Server, start_server
from tests.web.test_ui import chat, records, sample_traffic
from web.app import create_app

INSPECTOR = "/api/tools/traffic-inspector"


def _shots_dir() -> Path | None:
    target = os.environ.get(SCREENSHOTS_ENV)
    if not target:
        return None
    Path(target).mkdir(parents=True, exist_ok=True)
    return Path(target)


async def shot(page: Any, name: str) -> None:
    """Write <name>.png into $LLMTAP_SCREENSHOTS_DIR when it is set (browser.screenshot also
    shoots without it, into a temp dir; these views are shot only for the README)."""
    target = _shots_dir()
    if target is None:
        return
    await page.mouse.move(0, 0)
    png = await page.screenshot(path=str(target / f"{name}.png"), full_page=False)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def record(i: int, **extra: Any) -> InterceptedRequest:
    base = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i)
    data: dict[str, Any] = {
        "id": f"rec-{i:05d}",
        "source": "http-proxy",
        "timestamp": base,
        "method": "GET",
        "scheme": "https",
        "host": f"host{i % 7}.example",
        "path": f"/item/{i}",
        "status": 200,
        "requestSize": 10,
        "responseSize": i,
        "detectedKind": "app",
        **extra,
    }
    return InterceptedRequest.model_validate(data)


async def open_page(ui: UI, width: int = 1440) -> None:
    await ui.page.set_viewport_size({"width": width, "height": 900})


# --------------------------------------------------------------------------- search + status


async def test_search_finds_a_word_inside_a_prompt(ui: UI) -> None:
    from playwright.async_api import expect

    ui.server.upstream.script(Reply.text("A burrowing mammal."), Reply.text("Fine."))
    await chat(ui.server, "Where does the aardvark sleep?", system="You are a zoologist.")
    await chat(ui.server, "How are you today?")
    await expect(ui.rows()).to_have_count(2)
    # Not in host, path or model: only the server's search over bodies finds it.
    await ui.page.locator("#f-text").fill("aardvark")
    await expect(ui.rows()).to_have_count(1)
    await expect(ui.page.locator("#search-note")).to_contain_text("1 in bodies")
    await ui.rows().first.click()
    await expect(ui.page.locator("#tab-body .role-user .blk-text")).to_have_text(
        "Where does the aardvark sleep?"
    )
    # A word of the reply finds it too; a word in neither call, nothing.
    await ui.page.locator("#f-text").fill("burrowing")
    await expect(ui.rows()).to_have_count(1)
    await ui.page.locator("#f-text").fill("platypus")
    await expect(ui.rows()).to_have_count(0)
    await ui.page.locator("#f-text").fill("")
    await expect(ui.rows()).to_have_count(2)
    assert ui.page_errors == []


async def test_a_cut_stream_is_listed_under_error(ui: UI) -> None:
    from playwright.async_api import expect

    ui.server.upstream.script(Reply.text("one two three four five", cut_after=3), Reply.text("ok"))
    await chat(ui.server, "this stream breaks", stream=True)
    await chat(ui.server, "this one finishes", stream=True)
    await expect(ui.rows()).to_have_count(2)
    await ui.page.locator("#f-status").select_option("error")
    await expect(ui.rows()).to_have_count(1)
    row = ui.rows().first
    await expect(row.locator(".c-status")).to_contain_text("error")
    await expect(row.locator(".c-status .st-2xx")).to_have_count(0)  # never a green 200
    await row.click()
    await expect(ui.page.locator("#tab-body .role-user .blk-text")).to_have_text(
        "this stream breaks"
    )
    await ui.page.locator("#f-status").select_option("2xx")
    await expect(ui.rows()).to_have_count(1)
    await expect(ui.rows().first.locator(".c-status")).to_have_text("200")


# --------------------------------------------------------------------------- list


@pytest.fixture
async def big_server(fake_upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[Server]:
    srv, webapp = await start_server(tmp_path / "data", fake_upstream, lanes=[], buffer_size=10000)
    for i in range(10000):
        srv.runtime.inspector.add(record(i))
    try:
        yield srv
    finally:
        await webapp.done()
        await srv.runtime.close()


async def test_ten_thousand_rows_are_virtualised(browser_context: Any, big_server: Server) -> None:
    from playwright.async_api import expect

    page = await browser_context.new_page()
    ui = UI(page, big_server)
    await ui.open()
    await expect(page.locator("#f-count")).to_have_text(
        "10,000 shown / 10,000 captured", timeout=30_000
    )
    rendered = await page.locator("#flow-body tr").count()
    assert 0 < rendered < 80, rendered  # only what is in view (plus a small overscan)
    await expect(page.locator("#flow-body tr").first.locator(".c-url")).to_contain_text(
        "/item/9999"
    )
    # Scrolled to the end: the oldest call is there, and still only a window of rows.
    await page.locator("#flows").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    await expect(page.locator("#flow-body tr", has_text="/item/0")).to_have_count(1)
    assert await page.locator("#flow-body tr").count() < 80
    # Keyboard moves keep working across the virtual window.
    await page.locator("#flows").evaluate("el => { el.scrollTop = 0; }")
    await page.locator("#flows").focus()
    for _ in range(40):
        await page.keyboard.press("j")
    await expect(page.locator("#flow-body tr.selected .c-url")).to_contain_text("/item/9960")
    await expect(page.locator("#flow-body tr.selected")).to_be_in_viewport()


async def test_columns_sort_and_resize_and_size_shows_tunnel_bytes(ui: UI) -> None:
    from playwright.async_api import expect

    inspector = ui.server.runtime.inspector
    inspector.add(record(1, responseSize=500))
    inspector.add(record(2, responseSize=90000))
    tunnel = record(
        3,
        method="CONNECT",
        host="tunnel.example",
        port=443,
        path="",
        requestSize=2048,
        responseSize=5 * 1048576,
        note="TLS not intercepted: 2048 bytes sent, 5242880 bytes received, 1.20 s",
    )
    inspector.add(tunnel)
    await expect(ui.rows()).to_have_count(3)
    row = ui.row_for("tunnel.example")
    await expect(row.locator(".c-size")).to_have_text("2.0 KB / 5.0 MB")
    await expect(row.locator(".c-url")).to_have_text("tunnel.example:443")
    await expect(row).not_to_contain_text("null")
    await row.click()
    await expect(ui.page.locator("#detail-title")).to_contain_text("tunnel.example:443")
    await expect(ui.page.locator("#detail-title")).not_to_contain_text("null")
    await ui.page.locator("#detail-close").click()

    urls = ui.rows().locator(".c-url .path")
    await expect(urls).to_have_text([":443", "/item/2", "/item/1"])  # newest first
    await ui.page.locator("#flow-head th.c-size").click()  # biggest first
    await expect(urls).to_have_text([":443", "/item/2", "/item/1"])
    await ui.page.locator("#flow-head th.c-size").click()  # smallest first
    await expect(urls).to_have_text(["/item/1", "/item/2", ":443"])
    await expect(ui.page.locator("#flow-head th.c-size")).to_have_attribute(
        "aria-sort", "ascending"
    )

    handle = ui.page.locator("#flow-head th.c-model .resizer")
    before = await ui.page.locator("#flow-head th.c-model").bounding_box()
    box = await handle.bounding_box()
    assert before and box
    await ui.page.mouse.move(box["x"] + 3, box["y"] + 5)
    await ui.page.mouse.down()
    await ui.page.mouse.move(box["x"] + 83, box["y"] + 5, steps=4)
    await ui.page.mouse.up()
    after = await ui.page.locator("#flow-head th.c-model").bounding_box()
    assert after and after["width"] > before["width"] + 60
    cell = await ui.rows().first.locator(".c-model").bounding_box()
    assert cell and abs(cell["width"] - after["width"]) < 2  # rows follow the header


async def test_context_tints_stay_distinguishable(ui: UI) -> None:
    from playwright.async_api import expect

    for system in ("You are agent one.", "You are agent two.", "You are agent three."):
        await chat(ui.server, "hi", system=system)
    await expect(ui.rows()).to_have_count(3)
    hues = [
        int(await ui.rows().nth(i).evaluate("el => el.style.getPropertyValue('--hue')"))
        for i in range(3)
    ]

    def distance(a: int, b: int) -> int:
        return min(abs(a - b), 360 - abs(a - b))

    pairs = [(a, b) for i, a in enumerate(hues) for b in hues[i + 1 :]]
    assert all(distance(a, b) >= 60 for a, b in pairs), hues


async def test_header_fits_one_row_at_1280_and_degrades_at_1024(ui: UI) -> None:
    for width, max_height in ((1280, 50), (1024, 50)):
        await ui.page.set_viewport_size({"width": width, "height": 800})
        bar = await ui.page.locator(".topbar").bounding_box()
        assert bar and bar["height"] <= max_height, (width, bar)
        # What matters stays on screen: the views, recording and the sessions menu.
        for sel in (".view-tab[data-view=router]", "#rec-btn", "#sessions-menu summary"):
            box = await ui.page.locator(sel).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (width, sel, box)
        overflow = await ui.page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width
        # The list drops its least needed columns before crushing host and path.
        url = await ui.page.locator("#flow-head th.c-url").bounding_box()
        assert url and url["width"] >= 250, (width, url)
        if width == 1024:
            await shot(ui.page, "header-1024")


# --------------------------------------------------------------------------- detail


async def test_upstream_request_beside_the_clients_and_curl_replays(ui: UI) -> None:
    from playwright.async_api import expect

    ui.server.upstream.script(
        Reply.text("translated once"), Reply.text("curl through llmtap"), Reply.text("curl direct")
    )
    async with httpx.AsyncClient(base_url=ui.server.url, timeout=30) as client:
        resp = await client.post(
            "/v1/messages",
            json={
                "model": ui.server.model("oa"),
                "max_tokens": 64,
                "system": "Be brief.",
                "messages": [{"role": "user", "content": "translate me"}],
            },
        )
    assert resp.status_code == 200, resp.text
    await ui.rows().first.click()
    await ui.page.locator(".tab[data-tab=request]").click()
    upstream = ui.page.locator("#req-upstream")
    await expect(upstream).to_contain_text(ui.server.upstream.url + "/v1/chat/completions")
    await expect(upstream).to_contain_text('"gpt-4o-mini"')  # mapped to the connection's name
    await expect(upstream).to_contain_text('"role": "system"')  # translated to Chat
    await expect(ui.page.locator("#req-client")).to_contain_text('"max_tokens": 64')
    await shot(ui.page, "request")

    for which, expected in (("client", "curl through llmtap"), ("upstream", "curl direct")):
        await ui.page.locator(f"#copy-curl-{which}").click()
        command = await ui.page.locator(f"#curl-{which}").text_content()
        assert command and command.lstrip("# ").startswith(("curl", "the key")), command
        env = {**os.environ, "LLMTAP_API_KEY": "sk-test-oa-0123456789abcdef"}
        done = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-c", command],
            capture_output=True,
            text=True,
            timeout=30,
            env={k: v for k, v in env.items() if not k.lower().endswith("_proxy")},
        )
        assert done.returncode == 0, (command, done.stderr)
        assert expected in done.stdout, (which, done.stdout)
    # The curl through llmtap was recorded like any call; the direct one went to the fake.
    await expect(ui.rows()).to_have_count(2)
    assert ui.server.upstream.requests[-1].headers["authorization"] == (
        "Bearer sk-test-oa-0123456789abcdef"
    )


async def test_edit_and_resend_shows_both_answers(ui: UI) -> None:
    from playwright.async_api import expect

    ui.server.upstream.script(Reply.text("the old answer"), Reply.text("the new answer"))
    await chat(ui.server, "original question", stream=True)
    await ui.rows().first.click()
    await ui.page.locator(".tab[data-tab=replay]").click()
    area = ui.page.locator("#resend-body")
    text = await area.input_value()
    assert "original question" in text
    await area.fill(text.replace("original question", "edited question"))
    await ui.page.locator("#resend-target").select_option("router")
    await ui.page.locator("#resend-run").click()
    result = ui.page.locator("#resend-result")
    await expect(result.locator(".answer-old .blk-text")).to_have_text("the old answer")
    await expect(result.locator(".answer-new .blk-text")).to_have_text("the new answer")
    await expect(result).not_to_contain_text("data:")  # rendered, not raw SSE
    await expect(result).not_to_contain_text("null")
    sent = ui.server.upstream.requests[-1]
    assert "edited question" in sent.body.decode()
    await shot(ui.page, "resend")
    await result.locator("#resend-open").click()
    await expect(ui.page.locator("#detail-title")).to_contain_text("resend of")
    await expect(ui.page.locator("#detail-title")).not_to_contain_text("null")
    await expect(ui.page.locator("#tab-body .role-user .blk-text")).to_have_text("edited question")


# --------------------------------------------------------------------------- restarts


async def test_websocket_reconnects_and_resyncs_without_duplicates(
    browser_context: Any, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    srv, webapp = await start_server(tmp_path / "data", fake_upstream)
    port = int(srv.url.rsplit(":", 1)[1])
    try:
        page = await browser_context.new_page()
        ui = UI(page, srv)
        await ui.open()
        await chat(srv, "before one")
        await chat(srv, "before two")
        await expect(ui.rows()).to_have_count(2)
        # The web server goes away under the page (the records stay in the process) ...
        await webapp.done()
        await expect(page.locator("#conn")).to_have_class(re.compile("conn-down"))
        srv.runtime.inspector.add(record(1, host="while-down.example"))
        # ... and comes back on the same port: the page reconnects by itself and resyncs.
        webapp = WebApp(create_app(srv.runtime), "127.0.0.1", port)
        await webapp.running()
        await expect(page.locator("#conn")).to_have_class("conn conn-live", timeout=30_000)
        await expect(ui.rows()).to_have_count(3)
        ids = await ui.rows().evaluate_all("rows => rows.map(r => r.dataset.id)")
        assert len(set(ids)) == 3
        assert sorted(ids) == sorted(r["id"] for r in await records(srv))
        await chat(srv, "after")
        await expect(ui.rows()).to_have_count(4)
    finally:
        await webapp.done()
        await srv.runtime.close()


async def test_a_session_survives_a_restart_and_shows_its_calls(
    browser_context: Any, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    from tests.addons.proc import free_port, start_llmtap

    data = tmp_path / "data"
    port = free_port()
    provider = f"openai={fake_upstream.url}/v1,name=oa,key=sk-test-oa-0123456789abcdef"
    app = start_llmtap(data, "--provider", provider, port=port)
    try:
        page = await browser_context.new_page()
        await page.goto(app.url + "/")
        await expect(page.locator("#conn")).to_have_class("conn conn-live")
        await page.locator("#session-name").fill("before restart")
        await page.locator("#rec-btn").click()
        await expect(page.locator("#rec-status")).to_contain_text("REC before restart")
        words = ("alpha", "bravo", "charlie")
        fake_upstream.script(*(Reply.text(f"answer {w}") for w in words))
        async with httpx.AsyncClient(base_url=app.url, timeout=30) as client:
            for word in words:
                body = {
                    "model": "oa/gpt-4o-mini",
                    "messages": [{"role": "user", "content": f"kept call {word}"}],
                }
                resp = await client.post("/v1/chat/completions", json=body)
                assert resp.status_code == 200
        await expect(page.locator("#flow-body tr.flow")).to_have_count(3)
        app.stop()
        await expect(page.locator("#conn")).to_have_class(re.compile("conn-down"))
        app = start_llmtap(data, "--provider", provider, port=port)
        await expect(page.locator("#conn")).to_have_class("conn conn-live", timeout=30_000)
        # The live buffer started empty; the stored session still has all three calls.
        await expect(page.locator("#flow-body tr.flow")).to_have_count(0)
        await page.locator("#sessions-menu summary").click()
        row = page.locator(".session-row", has_text="before restart")
        await expect(row).to_contain_text("3 calls")
        await expect(row).to_contain_text("ended")
        await row.locator("button", has_text="show").click()
        await expect(page.locator("#flow-body tr.flow")).to_have_count(3)
        await expect(page.locator("#session-note")).to_have_text("3 stored calls")
        await page.locator("#flow-body tr.flow", has_text="/v1/chat/completions").first.click()
        await expect(page.locator("#tab-body .role-user .blk-text")).to_have_text(
            "kept call charlie"
        )
        # Search reaches the stored calls too.
        await page.locator("#f-text").fill("bravo")
        await expect(page.locator("#flow-body tr.flow")).to_have_count(1)
    finally:
        app.stop()


async def test_require_login_says_how_to_log_in(
    browser_context: Any, fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    from tests.addons.proc import start_llmtap

    app = start_llmtap(tmp_path / "data", env={"LLMTAP_REQUIRE_LOGIN": "true"})
    try:
        printed = re.search(r"login\s+(http://\S+/\?token=\S+)", app.log())
        assert printed, app.log()
        page = await browser_context.new_page()
        await page.goto(app.url + "/")
        notice = page.locator("#login")
        await expect(notice).to_be_visible()
        await expect(notice).to_contain_text("Login required")
        await expect(notice).to_contain_text("llmtap token")
        await expect(notice).to_contain_text("/?token=")
        await expect(page.locator("#conn")).to_contain_text("login required")
        await shot(page, "login")
        # Pasting the token logs in (the start URL sets the cookie), as does the printed URL.
        await page.locator("#login-token").fill(app.token)
        await page.locator("#login-form button").click()
        await expect(page.locator("#conn")).to_have_class("conn conn-live")
        await expect(notice).to_be_hidden()
        await browser_context.clear_cookies()
        await page.reload()
        await expect(notice).to_be_visible()
        await page.goto(printed.group(1))
        await expect(page.locator("#conn")).to_have_class("conn conn-live")
        await expect(notice).to_be_hidden()
    finally:
        app.stop()


# --------------------------------------------------------------------------- screenshots


async def test_screenshots_of_the_traffic_views(ui: UI) -> None:
    from playwright.async_api import expect

    await sample_traffic(ui.server)
    await expect(ui.rows()).to_have_count(6)
    await shot(ui.page, "traffic")
    await ui.rows().first.click()
    await ui.page.locator("#toggle-history").click()
    await expect(ui.page.locator("#tab-body .blk-tool-use")).to_have_count(1)
    await shot(ui.page, "detail")
    await ui.page.locator("#f-text").fill("memoize")
    await expect(ui.rows()).to_have_count(2)
    await shot(ui.page, "search")
    assert json.dumps(ui.page_errors) == "[]"


async def test_another_view_opens_a_call_the_live_feed_no_longer_has(ui: UI) -> None:
    from playwright.async_api import expect

    session = (await ui.server.api("POST", INSPECTOR + "/sessions", json={"name": "s"})).json()
    ui.server.upstream.script(Reply.text("kept"))
    resp = await chat(ui.server, "an older call")
    await ui.server.api("PATCH", INSPECTOR + f"/sessions/{session['id']}", json={"action": "stop"})
    await ui.server.api("DELETE", INSPECTOR + "/requests")
    await expect(ui.rows()).to_have_count(0)
    # What the Router view's call log does with a row (its id is the record's id).
    call_id = resp.headers["x-omniroute-request-id"]
    await ui.page.evaluate(
        "id => window.dispatchEvent(new CustomEvent('llmtap:open-call', {detail: {id}}))", call_id
    )
    await expect(ui.rows()).to_have_count(1)
    await expect(ui.page.locator("#tab-body .role-user .blk-text")).to_have_text("an older call")
    await expect(ui.page.locator("#detail-title")).to_contain_text("stored")
