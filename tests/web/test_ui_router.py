"""The Router view in a real headless Chromium against a real llmtap with the fake upstream:
health, providers added/tested/edited/disabled/deleted through the page, combos built in the
page with live breakers and the dry-run plan, aliases, chains, keys and settings. The usage
charts and the call log: test_ui_usage.py."""

from __future__ import annotations

import re

import openai

from router import __version__
from tests.fakes.upstream import FakeUpstream, Reply
from tests.web.browser import UI, chat, open_router, screenshot
from tests.web.harness import Server


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
    await expect(combo.locator(".combo-node .n-target")).to_have_text(
        ["an · claude-sonnet-4", "oa · gpt-4o-mini"]
    )
    await expect(combo.locator(".combo-node .n-weight")).to_have_text(["1", "3"])
    await expect(combo.locator(".combo-node .n-priority")).to_have_text(["1", "0"])
    await expect(combo.locator(".combo-node .n-breaker")).to_have_text(["closed", "closed"])
    await expect(combo).to_contain_text("first node drawn at random by weight")
    await expect(ui.page.locator("#rt-combos")).not_to_contain_text("connectionId")


async def test_edit_a_provider_url_key_models_priority_enabled(ui: UI) -> None:
    from playwright.async_api import expect

    page, server = ui.page, ui.server
    conn_id = server.connection_ids["oa"]
    (before,) = [c for c in await connections(server) if c["id"] == conn_id]
    await open_router(ui)
    row = page.locator(f"#rt-providers tr[data-id='{conn_id}']")
    await row.locator(".p-edit").click()
    new_key = "sk-edited-in-the-ui-9876543210zz"
    await expect(row.locator(".e-key")).to_have_attribute(
        "placeholder", re.compile(str(before["keyPreview"]))
    )
    await expect(row.locator(".e-key")).to_have_value("")  # the key itself never comes back
    await row.locator(".e-url").fill(server.upstream.url + "/v1/chat/completions")
    await row.locator(".e-key").fill(new_key)
    await row.locator(".e-models").fill("gpt-4o-mini, fake-large")
    await row.locator(".e-priority").fill("3")
    await row.locator(".e-enabled").uncheck()
    await row.locator(".e-save").click()
    await expect(page.locator("#p-new-status")).to_have_text(
        "Saved oa: url, key replaced, models, priority, isActive."
    )
    (after,) = [c for c in await connections(server) if c["id"] == conn_id]
    assert after["url"] == server.upstream.url + "/v1"  # normalised like on create
    assert after["models"] == ["gpt-4o-mini", "fake-large"]
    assert after["priority"] == 3 and after["isActive"] is False
    assert after["keyPreview"] != before["keyPreview"] and new_key.endswith(
        after["keyPreview"].lstrip("…")
    )
    await expect(row.locator(".p-key")).to_have_text(str(after["keyPreview"]))
    await expect(row.locator(".p-active")).to_have_text("disabled")
    await expect(page.locator("#router-view")).not_to_contain_text(new_key)

    # The new key is the one sent upstream; enabled again from the edit row.
    await row.locator(".p-edit").click()
    await row.locator(".e-enabled").check()
    await row.locator(".e-save").click()
    await expect(row.locator(".p-active")).to_have_text("enabled")
    server.upstream.script(Reply.text("with the new key"))
    assert await chat(server, "oa/gpt-4o-mini") == "with the new key"
    assert server.upstream.requests[-1].headers["authorization"] == f"Bearer {new_key}"

    # A refused edit names the field and changes nothing.
    await row.locator(".p-edit").click()
    await row.locator(".e-url").fill("ftp://nowhere")
    await row.locator(".e-save").click()
    await expect(row.locator(".e-status")).to_contain_text("url")
    (still,) = [c for c in await connections(server) if c["id"] == conn_id]
    assert still["url"] == after["url"]
    assert ui.page_errors == []


async def test_build_a_combo_break_its_first_node_see_the_breaker_open_and_failover(
    ui: UI,
) -> None:
    from playwright.async_api import expect

    page, server = ui.page, ui.server
    async with FakeUpstream() as broken:
        broken.default_reply = Reply.error(500, "upstream is down")
        flaky_id = await server.add_connection("flaky", broken.url + "/v1")
        # One breaker-worthy failure opens it (the default is 5), for longer than a slow
        # machine takes to run this test (so it is still open, not half-open, when looked at).
        limits = {"failureThreshold": 1, "cooldownSeconds": 600, "maxCooldownSeconds": 600}
        resp = await server.api("PATCH", "/api/resilience", json=limits)
        assert resp.status_code == 200, resp.text

        await open_router(ui)
        await page.locator("#combo-new").click()
        editor = page.locator("#combo-editor")
        await editor.locator("#ce-name").fill("sturdy")
        await editor.locator("#ce-strategy").select_option("priority")
        await expect(editor.locator("#ce-explain")).to_have_text(
            "by priority (lowest first), then list order"
        )
        nodes = editor.locator("tr.node-edit")
        await nodes.nth(0).locator(".ne-conn").select_option(flaky_id)
        await nodes.nth(0).locator(".ne-model").fill("gpt-4o-mini")
        await nodes.nth(0).locator(".ne-priority").fill("0")
        await editor.locator("#ce-add-node").click()
        await nodes.nth(1).locator(".ne-conn").select_option(server.connection_ids["an"])
        await nodes.nth(1).locator(".ne-model").fill("claude-sonnet-4")
        await nodes.nth(1).locator(".ne-priority").fill("1")
        await editor.locator("#ce-save").click()
        await expect(page.locator("#combo-status")).to_have_text("Created sturdy.")
        (combo,) = [
            c
            for c in (await server.api("GET", "/api/combos")).json()["combos"]
            if c["name"] == "sturdy"
        ]
        assert combo["strategy"] == "priority"
        assert [(n["connectionId"], n["model"], n["priority"]) for n in combo["nodes"]] == [
            (flaky_id, "gpt-4o-mini", 0),
            (server.connection_ids["an"], "claude-sonnet-4", 1),
        ]
        card = page.locator("#rt-combos .combo[data-name=sturdy]")

        # The dry run: flaky first, then an.
        await card.locator(".c-plan").click()
        await expect(card.locator(".plan-step")).to_have_count(2)
        await expect(card.locator(".plan-step").nth(0)).to_contain_text("flaky/gpt-4o-mini")
        await expect(card.locator(".plan-step").nth(1)).to_contain_text("an/claude-sonnet-4")

        # A real call: flaky answers 500, the router fails over to an.
        server.upstream.script(Reply.text("served by the second node"))
        assert await chat(server, "sturdy") == "served by the second node"
        assert len(broken.requests) == 1

        # The page follows on its own (live metrics): breaker open with the time to its probe.
        first = card.locator(".combo-node").nth(0)
        await expect(first.locator(".n-breaker")).to_have_text(
            re.compile(r"^open · probe in \d+ s$")
        )
        await expect(first.locator(".n-failures")).to_have_text("1")
        await expect(card.locator(".combo-node").nth(1).locator(".n-requests")).to_have_text("1")
        await expect(card.locator(".combo-node").nth(1).locator(".n-breaker")).to_have_text(
            "closed"
        )
        # The next request would not try flaky while its breaker is open.
        await card.locator(".c-plan").click()
        await expect(card.locator(".plan-step")).to_have_count(1)
        await expect(card.locator(".plan-step")).to_contain_text("an/claude-sonnet-4")
        await expect(card.locator(".plan-skipped")).to_contain_text(
            "flaky/gpt-4o-mini: breaker open"
        )
        # Health lists the same breaker (on the next load of the page).
        await page.locator("#log-refresh").click()
        (log,) = [r for r in await server.call_logs() if r["requestedModel"] == "sturdy"]
        assert log["attempt"] == 2 and log["connectionId"] == server.connection_ids["an"]
        await expect(
            page.locator(f"#call-log tr.call[data-id='{log['id']}'] .c-model")
        ).to_contain_text("attempt 2")
        await screenshot(ui, "router", top="#rt-providers")
        # Health lists the breaker; resetting it there closes it (the card follows).
        health_row = page.locator(f"#h-breakers tr[data-id='{flaky_id}']")
        await expect(health_row.locator(".b-state")).to_contain_text("open")
        await page.locator("#h-reset").click()
        await expect(first.locator(".n-breaker")).to_have_text("closed")

        # Edit: swap the order in the page; the plan follows.
        await card.locator(".c-edit").click()
        await nodes.nth(0).locator(".ne-priority").fill("5")
        await editor.locator("#ce-save").click()
        await expect(page.locator("#combo-status")).to_have_text("Saved sturdy.")
        await card.locator(".c-plan").click()
        await expect(card.locator(".plan-step").nth(0)).to_contain_text("an/claude-sonnet-4")
        # Delete asks first.
        await card.locator(".c-delete").click()
        await card.locator(".c-confirm-delete").click()
        await expect(page.locator("#combo-status")).to_have_text("Deleted sturdy.")
        assert (await server.api("GET", "/api/combos")).json()["combos"] == []
    assert ui.page_errors == []


async def test_aliases_and_fallback_chains(ui: UI) -> None:
    from playwright.async_api import expect

    page, server = ui.page, ui.server
    await open_router(ui)
    await page.locator("#al-alias").fill("smart")
    await page.locator("#al-target").fill("an/claude-sonnet-4")
    await page.locator("#al-add").click()
    await expect(page.locator("#al-status")).to_have_text("smart → an/claude-sonnet-4.")
    await expect(page.locator("#rt-aliases tr.alias[data-alias=smart]")).to_contain_text(
        "an/claude-sonnet-4"
    )
    server.upstream.script(Reply.text("via the alias"))
    assert await chat(server, "smart") == "via the alias"
    assert server.upstream.requests[-1].json["model"] == "claude-sonnet-4"
    # A bad target is refused with the field named.
    await page.locator("#al-alias").fill("nowhere")
    await page.locator("#al-target").fill("nope/model")
    await page.locator("#al-add").click()
    await expect(page.locator("#al-status")).to_contain_text("target must be")
    await page.locator("#rt-aliases tr.alias[data-alias=smart] .al-delete").click()
    await expect(page.locator("#al-status")).to_have_text("Deleted alias smart.")

    await page.locator("#fc-model").fill("gpt-4o-mini")
    await page.locator("#fc-chain").fill("oa, an/claude-sonnet-4")
    await page.locator("#fc-add").click()
    await expect(page.locator("#fc-status")).to_have_text("Saved the chain of gpt-4o-mini.")
    await expect(page.locator("#rt-chains tr.chain")).to_contain_text("oa → an/claude-sonnet-4")
    chains = (await server.api("GET", "/api/fallback/chains")).json()["chains"]
    assert [(link["provider"], link["priority"]) for link in chains[0]["chain"]] == [
        ("oa", 0),
        ("an/claude-sonnet-4", 1),
    ]
    await page.locator("#rt-chains tr.chain .fc-delete").click()
    await expect(page.locator("#rt-chains")).to_contain_text("No fallback chains.")


async def test_a_new_key_is_shown_once_and_works(ui: UI) -> None:
    from playwright.async_api import expect

    page, server = ui.page, ui.server
    await open_router(ui)
    await page.locator("#k-label").fill("ci runner")
    await page.locator("#k-add").click()
    full = await page.locator("#k-full").input_value()
    (key,) = (await server.api("GET", "/api/keys")).json()["keys"]
    assert key["label"] == "ci runner" and full.endswith(key["keyPreview"].lstrip("…"))
    assert len(full) > len(key["keyPreview"]) + 8
    row = page.locator(f"#rt-keys tr.key[data-id='{key['id']}']")
    await expect(row.locator(".k-preview")).to_have_text(key["keyPreview"])
    await page.locator("#k-copy").click()
    await expect(page.locator("#k-copied")).not_to_be_empty()

    # Turn requireApiKey on in Settings: /v1 now needs the key.
    await page.locator("#s-requireApiKey").check()
    await page.locator("#s-save").click()
    await expect(page.locator("#s-status")).to_have_text("Saved requireApiKey, in effect now.")
    assert (await server.api("GET", "/api/settings")).json()["requireApiKey"] is True
    body = {"model": server.model("oa"), "messages": [{"role": "user", "content": "x"}]}
    assert (await server.api("POST", "/v1/chat/completions", json=body)).status_code == 401
    ok = await server.api(
        "POST", "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {full}"}
    )
    assert ok.status_code == 200, ok.text

    # Shown once: after a reload the page knows only the preview.
    await page.reload()
    await open_router(ui)
    await expect(page.locator("#rt-keys tr.key")).to_have_count(1)
    await expect(page.locator("#k-full")).to_have_count(0)
    await expect(page.locator("#router-view")).not_to_contain_text(full)
    # A setting that needs a restart says so.
    await page.locator("#s-bridgePort").fill("8443")
    await page.locator("#s-save").click()
    await expect(page.locator("#s-status")).to_have_text(
        "Saved bridgePort; bridgePort after a restart."
    )
    await expect(page.locator("tr.setting[data-key=bridgePort] .s-pending")).to_be_visible()
    await expect(page.locator("#s-pending")).to_contain_text("bridgePort")
    # Breaker thresholds live in the same table.
    await page.locator("#s-failureThreshold").fill("2")
    await page.locator("#s-save").click()
    await expect(page.locator("#s-status")).to_have_text("Saved failureThreshold, in effect now.")
    assert (await server.api("GET", "/api/resilience")).json()["failureThreshold"] == 2
    await page.locator("#s-cooldownSeconds").fill("0")
    await page.locator("#s-save").click()
    await expect(page.locator("#s-status")).to_contain_text("Not saved")
    # Delete takes two clicks.
    await row.locator(".k-delete").click()
    await row.locator(".k-delete").click()
    await expect(page.locator("#k-status")).to_contain_text("Deleted ci runner")
    assert (await server.api("GET", "/api/keys")).json()["keys"] == []


async def test_a_combo_with_a_nested_combo_node(ui: UI) -> None:
    from playwright.async_api import expect

    page, server = ui.page, ui.server
    inner = {
        "name": "inner",
        "nodes": [{"connectionId": server.connection_ids["an"], "model": "claude-sonnet-4"}],
    }
    assert (await server.api("POST", "/api/combos", json=inner)).status_code == 201
    await open_router(ui)
    await page.locator("#combo-new").click()
    editor = page.locator("#combo-editor")
    await editor.locator("#ce-name").fill("outer")
    await editor.locator("#ce-strategy").select_option("round-robin")
    await expect(editor.locator("#ce-explain")).to_contain_text("rotates the starting node")
    node = editor.locator("tr.node-edit").nth(0)
    await node.locator(".ne-kind").select_option("combo")
    await expect(node.locator(".ne-conn")).to_be_hidden()
    await node.locator(".ne-combo").select_option("inner")
    await editor.locator("#ce-save").click()
    await expect(page.locator("#combo-status")).to_have_text("Created outer.")
    combos = {c["name"]: c for c in (await server.api("GET", "/api/combos")).json()["combos"]}
    assert combos["outer"]["strategy"] == "round-robin"
    assert [n["combo"] for n in combos["outer"]["nodes"]] == ["inner"]
    outer = page.locator("#rt-combos .combo[data-name=outer]")
    await expect(outer.locator(".combo-node .n-target")).to_have_text(["combo inner"])
    await outer.locator(".c-plan").click()
    await expect(outer.locator(".plan-step")).to_contain_text("an/claude-sonnet-4")
    server.upstream.script(Reply.text("through two combos"))
    assert await chat(server, "outer") == "through two combos"
    await expect(outer.locator(".combo-node .n-requests")).to_have_text(["1"])


async def test_a_breaker_past_its_cooldown_shows_half_open(ui: UI) -> None:
    from playwright.async_api import expect

    server = ui.server
    async with FakeUpstream() as broken:
        broken.default_reply = Reply.error(503, "down")
        down_id = await server.add_connection("down", broken.url + "/v1")
        limits = {"failureThreshold": 1, "cooldownSeconds": 0.2, "maxCooldownSeconds": 0.2}
        assert (await server.api("PATCH", "/api/resilience", json=limits)).status_code == 200
        combo = {
            "name": "pair",
            "nodes": [
                {"connectionId": down_id, "model": "m", "priority": 0},
                {
                    "connectionId": server.connection_ids["oa"],
                    "model": "gpt-4o-mini",
                    "priority": 1,
                },
            ],
        }
        assert (await server.api("POST", "/api/combos", json=combo)).status_code == 201
        server.upstream.script(Reply.text("second"))
        assert await chat(server, "pair") == "second"
        await open_router(ui)
        # The cooldown is over and no request has probed it yet: half-open, one probe allowed.
        node = ui.page.locator("#rt-combos .combo[data-name=pair] .combo-node").nth(0)
        await expect(node.locator(".n-breaker")).to_have_text("half-open")
        await expect(ui.page.locator(f"#h-breakers tr[data-id='{down_id}'] .b-state")).to_have_text(
            "half-open"
        )
