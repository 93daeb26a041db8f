"""The Agents view in a real headless Chromium against a real ``llmtap up`` (mitmproxy, the
AgentBridge listener on a free loopback port) with a temp hosts file, a temp trust store and
recording fakes of the OS tools (tests/addons/bridgeenv.py), a loopback DNS server and fake
upstreams: nothing of this machine (/etc/hosts, its trust store, its resolver) is touched."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.addons.agentstack import BRIDGE_API as B
from tests.addons.agentstack import Stack, agent_stack
from tests.addons.bridgeenv import ORIGINAL, BridgeEnv, bridge_env
from tests.addons.test_divert_e2e import CASES, call_via_bridge, reply_text
from tests.addons.test_http_proxy import ca_file, records
from tests.fakes.fixtures import tls_cert_for
from tests.fakes.upstream import Reply
from tests.web.browser import UI, screenshot

CLAUDE = CASES[0]  # claude-code, api.anthropic.com, Anthropic Messages
assert CLAUDE.agent == "claude-code"


@pytest.fixture
def machine(tmp_path: Path) -> BridgeEnv:
    return bridge_env(tmp_path)


@pytest.fixture
async def bridge(tmp_path: Path, machine: BridgeEnv) -> AsyncIterator[Stack]:
    async with agent_stack(
        tmp_path, data_dir=machine.data_dir, hosts_file=machine.hosts, env=machine.env
    ) as stack:
        yield stack


@pytest.fixture
async def page(browser_context: Any, bridge: Stack) -> AsyncIterator[UI]:
    from playwright.async_api import expect

    expect.set_options(timeout=15_000)
    ui = UI(await browser_context.new_page(), bridge.app)  # type: ignore[arg-type]
    ui.page.on("pageerror", lambda exc: ui.page_errors.append(str(exc)))
    await ui.open()
    yield ui


async def open_agents(ui: UI) -> None:
    from playwright.async_api import expect

    await ui.page.locator(".view-tab[data-view=agents]").click()
    await expect(ui.page.locator("#ag-agents .agent-card")).to_have_count(9)


def card(ui: UI, agent: str) -> Any:
    return ui.page.locator(f"#ag-agents .agent-card[data-agent='{agent}']")


async def test_a_mapping_set_in_the_page_applies_to_the_next_diverted_call(
    page: UI, bridge: Stack
) -> None:
    from playwright.async_api import expect

    ui, cafile = page, ca_file(bridge.app)
    # Before any mapping: the agent's call passes through to its real origin.
    bridge.origin.script(Reply.text("from the real origin"))
    status, _, text, _ = await call_via_bridge(bridge.bridge_port, cafile, CLAUDE, False)
    assert status == 200 and reply_text("anthropic", json.loads(text)) == "from the real origin"

    await open_agents(ui)
    server = ui.page.locator("#ag-server")
    await expect(server.locator("#ag-running")).to_have_text("running")
    await expect(server.locator("#ag-port")).to_have_text(str(bridge.bridge_port))
    claude = card(ui, "claude-code")
    await expect(claude.locator(".ag-divert")).to_have_text("divert supported")
    await expect(claude.locator(".ag-hosts")).to_have_text("api.anthropic.com")
    await expect(card(ui, "cursor").locator(".ag-divert")).to_have_text("capture only")
    await expect(card(ui, "cursor").locator(".ag-why")).not_to_be_empty()
    await expect(card(ui, "cursor").locator(".mapping-editor")).to_have_count(0)
    # The model the agent sent is offered (detected models are counted in batches: reopen).
    chip = claude.locator(f".detected[data-model='{CLAUDE.source_model}']")
    for _ in range(50):
        if await chip.count():
            break
        await ui.page.locator(".view-tab[data-view=router]").click()
        await open_agents(ui)
    await expect(chip).to_have_text(f"{CLAUDE.source_model} ×1")
    options = await claude.locator("datalist option").evaluate_all("os => os.map(o => o.value)")
    assert options == ["*", CLAUDE.source_model]
    targets = await ui.page.locator("#ag-targets option").evaluate_all("os => os.map(o => o.value)")
    assert "fo/gpt-4o-mini" in targets and "fa/claude-x" in targets

    await claude.locator(".m-add").click()
    row = claude.locator("tr.mapping").last
    await row.locator(".m-source").fill(CLAUDE.source_model)
    await row.locator(".m-target").fill("fo/gpt-4o-mini")
    await row.locator(".m-effort").select_option("low")
    await claude.locator(".m-save").click()
    await expect(claude.locator(".form-status")).to_have_text(
        "Saved 1 mapping(s): the next call uses them."
    )
    rows = bridge.app.api("GET", f"{B}/agents/claude-code/mappings").json()
    assert [(r["source_model"], r["target_model"], r["effort"]) for r in rows] == [
        (CLAUDE.source_model, "fo/gpt-4o-mini", "low")
    ]

    # The very next call is diverted through the router to the mapped model.
    bridge.upstream.script(Reply.text("mapped answer"))
    status, _, text, _ = await call_via_bridge(bridge.bridge_port, cafile, CLAUDE, False)
    assert status == 200 and reply_text("anthropic", json.loads(text)) == "mapped answer"
    sent = bridge.upstream.requests[-1]
    assert sent.json["model"] == "gpt-4o-mini" and sent.json["reasoning_effort"] == "low"
    mapped = [r["mappedModel"] for r in records(bridge.app) if r["host"] == CLAUDE.host]
    assert "fo/gpt-4o-mini" in mapped

    # A target the router cannot serve is refused with the row named; nothing changes.
    await row.locator(".m-target").fill("nowhere/model")
    await claude.locator(".m-save").click()
    await expect(claude.locator(".form-status")).to_contain_text("mappings.0.target")
    assert len(bridge.app.api("GET", f"{B}/agents/claude-code/mappings").json()) == 1

    await ui.page.locator(".view-tab[data-view=router]").click()
    await open_agents(ui)
    await expect(chip).to_contain_text("→ fo/gpt-4o-mini")
    await expect(ui.page.locator("#ag-intercepted")).not_to_have_text("0")
    await screenshot(ui, "agents")
    assert ui.page_errors == []


async def test_listener_dns_certificate_bypass_upstream_ca_diagnose_repair(
    page: UI, bridge: Stack, machine: BridgeEnv, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    ui, env = page, machine
    await open_agents(ui)
    codex = card(ui, "codex")

    # DNS on: the temp hosts file gets the agent's lines, marked; the user's lines stay.
    await codex.locator(".ag-dns").check()
    await expect(codex.locator(".form-status")).to_contain_text("DNS on: 4 hosts line(s) added")
    text = env.hosts.read_bytes()
    assert text.startswith(ORIGINAL) and b"127.0.0.1 chatgpt.com # llmtap" in text
    assert ["resolvectl", "flush-caches"] in env.fake.calls()

    # Route all: unmapped models of a divertable agent go through the router too.
    await expect(codex.locator(".m-none")).to_contain_text("pass through")
    await codex.locator(".ag-route-all").check()
    await expect(codex.locator(".form-status")).to_contain_text("Every chat call goes through")
    rows = {r["agent_id"]: r for r in bridge.app.api("GET", f"{B}/agents").json()}
    assert rows["codex"]["route_all"] is True
    await expect(card(ui, "zed").locator(".ag-route-all")).to_be_disabled()

    # Certificate: trust into the temp anchors dir (the fake update-ca-certificates).
    fingerprint = await ui.page.locator("#ag-fingerprint").inner_text()
    await expect(ui.page.locator("#ag-trusted")).to_have_text("no")
    await ui.page.locator("#ag-trust").click()
    await expect(ui.page.locator("#ag-trusted")).to_have_text("yes")
    assert list(env.anchors.iterdir()), "the CA went into the temp anchors dir"
    await ui.page.locator("details.manual-os[data-os=macOS] summary").click()
    await expect(ui.page.locator("details.manual-os[data-os=macOS] pre")).to_contain_text(
        "security add-trusted-cert"
    )
    async with ui.page.expect_download() as download_info:
        await ui.page.locator("#ag-download").click()
    saved = Path(await (await download_info.value).path())
    pem = await asyncio.to_thread(saved.read_text)
    assert pem == ca_file(bridge.app).read_text()
    # Regenerate says what it means for running agents, and asks first.
    await ui.page.locator("#ag-regen").click()
    await expect(ui.page.locator("#ag-regen-confirm")).to_contain_text("Agents running now")
    await ui.page.locator("#ag-regen-yes").click()
    await expect(ui.page.locator("#ag-fingerprint")).not_to_have_text(fingerprint)
    await expect(ui.page.locator("#ag-cert-status")).to_contain_text("New CA")
    assert ca_file(bridge.app).read_text() != pem

    # Bypass: defaults shown, the user's own saved.
    await expect(ui.page.locator("#ag-bypass .ag-bypass-defaults")).to_contain_text("*.okta.com")
    await ui.page.locator("#ag-bypass-user").fill("*.corp.example\nvault.internal")
    await ui.page.locator("#ag-bypass-save").click()
    await expect(ui.page.locator("#ag-bypass-status")).to_contain_text("Saved 2 pattern(s)")
    rows = bridge.app.api("GET", f"{B}/bypass").json()
    assert [r["pattern"] for r in rows if r["source"] == "user"] == [
        "*.corp.example",
        "vault.internal",
    ]

    # Upstream CA: a file that is not a certificate is refused, a PEM is kept.
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("hello")
    await ui.page.locator("#ag-upstream-path").fill(str(bad))
    await ui.page.locator("#ag-upstream-save").click()
    await expect(ui.page.locator("#ag-upstream-status")).to_contain_text("Not saved")
    good = tls_cert_for(tmp_path, hosts=["corp.example"], name="corp").ca_pem
    await ui.page.locator("#ag-upstream-path").fill(str(good))
    await ui.page.locator("#ag-upstream-save").click()
    await expect(ui.page.locator("#ag-upstream-status")).to_contain_text("Saved")
    assert bridge.app.api("GET", f"{B}/upstream-ca").json()["stored"] == str(good)

    # Diagnose, then repair: every marked hosts line goes, the user's file is back.
    await ui.page.locator("#ag-diagnose-run").click()
    await expect(ui.page.locator("#ag-checks tr.check[data-check=cert-exists]")).to_contain_text(
        "ok"
    )
    await expect(
        ui.page.locator("#ag-checks tr.check[data-check=dns-configured][data-agent=codex]")
    ).to_be_visible()
    await ui.page.locator("#ag-repair").click()
    await ui.page.locator("#ag-repair-yes").click()
    await expect(ui.page.locator("#ag-repair-status")).to_contain_text("Removed 4 hosts line(s)")
    assert env.hosts.read_bytes() == ORIGINAL

    # The listener: stop and start from the page.
    await ui.page.locator("#ag-stop").click()
    await expect(ui.page.locator("#ag-running")).to_have_text("stopped")
    await ui.page.locator("#ag-start").click()
    await expect(ui.page.locator("#ag-running")).to_have_text("running")
    await expect(ui.page.locator("#ag-started")).to_have_text(re.compile(r"^\d{4}-"))
    assert ui.page_errors == []
