"""The Router view in a real headless Chromium against a real llmtap with the fake upstream:
health, providers added/tested/disabled/deleted through the page, combos, the call log."""

from __future__ import annotations

import asyncio
import re

import openai

from router import __version__
from tests.fakes.upstream import Reply
from tests.web.browser import UI
from tests.web.harness import Server


async def open_router(ui: UI) -> None:
    from playwright.async_api import expect

    await ui.page.locator(".view-tab[data-view=router]").click()
    await expect(ui.page.locator("#rt-providers .add-form")).to_be_visible()


async def connections(server: Server) -> list[dict[str, object]]:
    resp = await server.api("GET", "/api/providers")
    assert resp.status_code == 200, resp.text
    return resp.json()["connections"]  # type: ignore[no-any-return]


async def test_health_shows_version_uptime_memory_and_listeners(ui: UI) -> None:
    from playwright.async_api import expect

    await open_router(ui)
    health = ui.page.locator("#rt-health")
    await expect(health).not_to_contain_text("(none)")
    await expect(health.locator("#h-version")).to_have_text(__version__)
    await expect(health.locator("#h-status")).to_have_text("ok")
    await expect(health.locator("#h-uptime")).to_have_text(re.compile(r"^\d+[dhms]"))
    await expect(health.locator("#h-memory")).to_contain_text("MB")
    port = ui.server.url.rsplit(":", 1)[1]
    api_row = health.locator("#h-listeners tr[data-name=api]")
    await expect(api_row).to_contain_text(f"127.0.0.1:{port}")
    await expect(api_row).to_contain_text("listening")
    # No mitmproxy in the test server: its listeners are named, with their ports, as not running.
    await expect(health.locator("#h-listeners tr[data-name=httpProxy]")).to_contain_text(
        "not running"
    )
    assert ui.page_errors == []


async def test_existing_providers_show_names_and_key_previews_only(ui: UI) -> None:
    from playwright.async_api import expect

    await open_router(ui)
    section = ui.page.locator("#rt-providers")
    for lane, conn_id in ui.server.connection_ids.items():
        row = section.locator(f"tr[data-id='{conn_id}']")
        await expect(row.locator(".p-name")).to_have_text(lane)
    (conn,) = [c for c in await connections(ui.server) if c["name"] == "oa"]
    await expect(section.locator(f"tr[data-id='{conn['id']}'] .p-key")).to_have_text(
        str(conn["keyPreview"])
    )
    await expect(section).not_to_contain_text("0123456789abcdef")  # keys never reach the page


async def test_add_test_call_disable_delete_a_provider(ui: UI) -> None:
    from playwright.async_api import expect

    page, server = ui.page, ui.server
    await page.set_viewport_size({"width": 1280, "height": 900})
    await open_router(ui)
    key = "sk-ui-added-secret-0123456789"
    # The URL as a provider's docs print it: a full endpoint, with a trailing slash.
    await page.locator("#p-new-kind").select_option("openai")
    await page.locator("#p-new-name").fill("mine")
    await page.locator("#p-new-url").fill(server.upstream.url + "/v1/chat/completions/")
    await page.locator("#p-new-key").fill(key)
    await page.locator("#p-new-models").fill("fake-small, fake-large")
    await page.locator("#p-new-add").click()

    base = server.upstream.url + "/v1"
    await expect(page.locator("#p-new-status")).to_have_text(
        f"Added mine; URL normalised to {base}."
    )
    (conn,) = [c for c in await connections(server) if c["name"] == "mine"]
    assert conn["url"] == base and conn["models"] == ["fake-small", "fake-large"]
    row = page.locator(f"#rt-providers tr[data-id='{conn['id']}']")
    await expect(row.locator(".p-url")).to_have_text(base)
    await expect(row.locator(".p-kind")).to_have_text("openai")
    await expect(row.locator(".p-key")).to_have_text(str(conn["keyPreview"]))
    await expect(page.locator("#router-view")).not_to_contain_text(key)

    # Test: a real round trip to the fake's model list.
    await row.locator(".p-test-btn").click()
    await expect(row.locator(".p-test")).to_have_text(re.compile(r"^ok · [\d.]+ m?s · 2 models$"))
    assert any(r.path.endswith("/v1/models") for r in server.upstream.requests)

    # A /v1 call through the new connection, with the official SDK.
    before = {r["id"] for r in await server.call_logs()}
    server.upstream.script(Reply.text("served by mine", usage=(12, 4, 0, 0, 0)))
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused")
    try:
        done = await client.chat.completions.create(
            model="mine/fake-small", messages=[{"role": "user", "content": "hi"}]
        )
    finally:
        await client.close()
    assert done.choices[0].message.content == "served by mine"
    (log,) = await server.new_call_logs(before)
    assert log["connectionId"] == conn["id"]
    await page.locator("#log-refresh").click()
    call = page.locator(f"#call-log tr.call[data-id='{log['id']}']")
    await expect(call.locator(".c-model")).to_contain_text("mine/fake-small")
    await expect(call.locator(".c-provider")).to_have_text("mine")
    await expect(call.locator(".c-status")).to_have_text("200")
    await expect(call.locator(".c-tokens")).to_have_text("12 / 4")
    await expect(call.locator(".c-latency")).not_to_be_empty()
    # Fixed columns: the whole log fits the section at 1280 px, nothing runs off-screen.
    fits = await page.locator("#call-log").evaluate(
        "t => t.getBoundingClientRect().right <= document.documentElement.clientWidth"
    )
    assert fits

    # Disable, then enable again.
    await row.locator(".p-toggle").click()
    await expect(row.locator(".p-active")).to_have_text("disabled")
    (conn,) = [c for c in await connections(server) if c["name"] == "mine"]
    assert conn["isActive"] is False
    await row.locator(".p-toggle").click()
    await expect(row.locator(".p-active")).to_have_text("enabled")

    # Delete asks first: cancel keeps it, confirm removes it.
    await row.locator(".p-delete").click()
    await expect(row).to_contain_text("Delete mine?")
    await row.locator(".p-cancel").click()
    await expect(row.locator(".p-delete")).to_be_visible()
    assert [c for c in await connections(server) if c["name"] == "mine"]
    await row.locator(".p-delete").click()
    await row.locator(".p-confirm-delete").click()
    await expect(page.locator("#p-new-status")).to_have_text("Deleted mine.")
    await expect(row).to_have_count(0)
    assert [c for c in await connections(server) if c["name"] == "mine"] == []
    assert ui.dialogs == [] and ui.page_errors == []


async def test_add_with_a_bad_url_shows_the_field_error(ui: UI) -> None:
    from playwright.async_api import expect

    await open_router(ui)
    before = await connections(ui.server)
    await ui.page.locator("#p-new-url").fill("not a url")
    await ui.page.locator("#p-new-add").click()
    await expect(ui.page.locator("#p-new-status")).to_contain_text("Not added:")
    await expect(ui.page.locator("#p-new-status")).to_contain_text("url must be an http")
    assert await connections(ui.server) == before


async def test_combos_render_connection_model_weight_and_priority(ui: UI) -> None:
    from playwright.async_api import expect

    ids = ui.server.connection_ids
    body = {
        "name": "fast",
        "strategy": "weighted",
        "nodes": [
            {"connectionId": ids["an"], "model": "claude-sonnet-4", "weight": 1, "priority": 1},
            {"connectionId": ids["oa"], "model": "gpt-4o-mini", "weight": 3, "priority": 0},
        ],
    }
    resp = await ui.server.api("POST", "/api/combos", json=body)
    assert resp.status_code == 201, resp.text
    await open_router(ui)
    combo = ui.page.locator("#rt-combos .combo[data-name=fast]")
    await expect(combo.locator(".badge")).to_have_text("weighted")
    await expect(combo.locator(".combo-node")).to_have_text(
        ["oa · gpt-4o-mini × 3 · priority 0", "an · claude-sonnet-4 × 1 · priority 1"]
    )
    await expect(ui.page.locator("#rt-combos")).not_to_contain_text("connectionId")


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
