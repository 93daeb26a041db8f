"""The inspector UI in a real headless Chromium (Debian's, driven by Playwright) against a real
llmtap server with fake upstreams; plus the static route itself.

Set LLMTAP_SCREENSHOT=path to also write the README screenshot from a run with sample traffic
(scripts/screenshot does that).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.upstream import Reply, ToolCall
from tests.web.browser import UI
from tests.web.harness import WEATHER_TOOL_OPENAI, Server
from web.ui import STATIC_DIR

INSPECTOR = "/api/tools/traffic-inspector"
# Endpoints the UI probes that may legitimately answer 404/503 (absent part, capture not
# running); Chromium reports those as console "Failed to load resource" errors.
OPTIONAL = ("/capture-modes", "/api/combos", "/api/usage/call-logs", "/api/monitoring/health")
HOSTILE = "<img src=x onerror=alert(1)>"


# --------------------------------------------------------------------------- static route


async def test_index_and_static_files_are_served_with_types_and_no_cache(server: Server) -> None:
    expected = {
        "/": "text/html",
        "/static/app.js": "text/javascript",
        "/static/dom.js": "text/javascript",
        "/static/detail.js": "text/javascript",
        "/static/http.js": "text/javascript",
        "/static/router.js": "text/javascript",
        "/static/store.js": "text/javascript",
        "/static/list.js": "text/javascript",
        "/static/live.js": "text/javascript",
        "/static/replay.js": "text/javascript",
        "/static/sessions.js": "text/javascript",
        "/static/capture.js": "text/javascript",
        "/static/app.css": "text/css",
    }
    for path, ctype in expected.items():
        resp = await server.api("GET", path)
        assert resp.status_code == 200, path
        assert resp.headers["content-type"].startswith(ctype), path
        assert resp.headers["cache-control"] == "no-cache"
        assert resp.headers["x-content-type-options"] == "nosniff"
    index = await server.api("GET", "/")
    assert index.content == (STATIC_DIR / "index.html").read_bytes()


async def test_static_refuses_paths_outside_the_static_dir(server: Server) -> None:
    for path in ("/static/../ui.py", "/static/%2e%2e/ui.py", "/static/nope.js", "/static/"):
        resp = await server.api("GET", path)
        assert resp.status_code == 404, path
        assert "def " not in resp.text


def test_ui_references_only_local_assets() -> None:
    # No CDN, no external fonts: every URL the UI names is same-origin.
    names = sorted(p.name for p in STATIC_DIR.iterdir())
    assert {"index.html", "app.js", "router.js", "app.css"} <= set(names)
    for name in names:
        # The SVG namespace is a name, never fetched (createElementNS needs it).
        text = (STATIC_DIR / name).read_text().replace('"http://www.w3.org/2000/svg"', "")
        assert "http://" not in text and "https://" not in text, name
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text, name


async def chat(
    server: Server,
    text: str,
    *,
    lane: str = "oa",
    system: str | None = None,
    history: list[dict[str, Any]] | None = None,
    stream: bool = False,
    tools: list[dict[str, Any]] | None = None,
) -> httpx.Response:
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages += history or []
    messages.append({"role": "user", "content": text})
    body: dict[str, Any] = {"model": server.model(lane), "messages": messages, "stream": stream}
    if tools:
        body["tools"] = tools
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        resp = await client.post("/v1/chat/completions", json=body)
        await resp.aread()
    assert resp.status_code == 200, resp.text
    return resp


async def records(server: Server) -> list[dict[str, Any]]:
    resp = await server.api("GET", f"{INSPECTOR}/requests")
    assert resp.status_code == 200, resp.text
    data = resp.json()
    return data if isinstance(data, list) else data.get("requests", data.get("data", []))


def fmt_int(n: int) -> str:
    return f"{n:,}"


def fmt_cost(usd: float | None) -> str:
    """The UI's dom.js fmtCost, to check the cost column against the record."""
    if usd is None:
        return "–"
    if usd == 0:
        return "$0"
    if usd < 0.000001:
        return "<$0.000001"
    return f"${usd:.6f}" if usd < 0.01 else f"${usd:.4f}"


# --------------------------------------------------------------------------- browser tests


async def test_page_loads_live_without_console_errors(ui: UI) -> None:
    from playwright.async_api import expect

    await expect(ui.page.locator("#version")).to_have_text("v" + __import__("router").__version__)
    await expect(ui.page.locator("#empty")).to_be_visible()
    await expect(ui.page.locator("#f-count")).to_contain_text("0 shown")
    assert ui.page_errors == []
    unexpected = [(s, u) for s, u in ui.failed if not any(p in u for p in OPTIONAL)]
    assert unexpected == []
    resource_errors = [e for e in ui.console_errors if e.startswith("Failed to load resource")]
    assert len(resource_errors) <= len(ui.failed)
    assert [e for e in ui.console_errors if e not in resource_errors] == []


async def test_call_appears_live_in_flight_then_done(ui: UI) -> None:
    from playwright.async_api import expect

    # Hold the upstream answer until the browser has shown the in-flight row.
    gate = asyncio.Event()

    async def gated_sleep(_seconds: float) -> None:
        await gate.wait()

    # The fake's delays all go through _sleep; swapping it for a gate makes "in flight"
    # observable without any timing assumption.
    setattr(ui.server.upstream, "_sleep", gated_sleep)  # noqa: B010
    ui.server.upstream.script(Reply.text("live answer", usage=(9, 3, 0, 0, 0), delay_first=1))
    call = asyncio.create_task(chat(ui.server, "are you live?"))
    row = ui.row_for("/chat/completions")
    await expect(row).to_have_count(1)
    await expect(row.locator(".c-status .st-flight")).to_be_visible()
    await expect(row.locator(".c-status .spinner")).to_have_count(1)
    await row.evaluate("el => { el.dataset.probe = 'same-node'; }")
    gate.set()
    await call
    await expect(row.locator(".c-status")).to_have_text("200")
    await expect(row).to_have_count(1)  # updated in place, never a second row
    assert await row.get_attribute("data-probe") == "same-node"  # keyed: the same <tr>
    await expect(row.locator(".c-tokens")).to_have_text("9 / 3")
    assert ui.page_errors == []


async def test_conversation_tokens_and_cost(ui: UI) -> None:
    from playwright.async_api import expect

    ui.server.upstream.script(Reply.text("Paris is the capital.", usage=(21, 7, 0, 0, 0)))
    await chat(ui.server, "What is the capital of France?", system="You are a geographer.")
    row = ui.row_for("/chat/completions")
    await expect(row.locator(".c-status")).to_have_text("200")
    (record,) = await records(ui.server)
    llm = record["llm"]
    await expect(row.locator(".c-tokens")).to_have_text(
        f"{fmt_int(llm['tokensIn'])} / {fmt_int(llm['tokensOut'])}"
    )
    assert (llm["tokensIn"], llm["tokensOut"]) == (21, 7)
    await expect(row.locator(".c-cost")).to_have_text(fmt_cost(llm["costUsd"]))
    await expect(row.locator(".c-model")).to_have_text(llm["model"])

    await row.click()
    convo = ui.page.locator("#tab-body .convo")
    await expect(convo.locator(".role-user .blk-text")).to_have_text(
        "What is the capital of France?"
    )
    await expect(convo.locator(".role-system .blk-text")).to_have_text("You are a geographer.")
    await expect(convo.locator(".is-response .blk-text")).to_have_text("Paris is the capital.")
    await expect(ui.page.locator("#f-tokens")).to_have_text("tokens in 21 · out 7")

    await ui.page.locator(".tab[data-tab=response]").click()
    await expect(ui.page.locator("#tab-body")).to_contain_text("Paris is the capital.")
    await ui.page.locator(".tab[data-tab=request]").click()
    await expect(ui.page.locator("#tab-body")).to_contain_text("What is the capital of France?")
    await ui.page.locator(".tab[data-tab=timing]").click()
    await expect(ui.page.locator("#tab-body .bar-total")).to_have_count(1)


async def test_thread_shows_only_what_the_call_added(ui: UI) -> None:
    from playwright.async_api import expect

    system = "You are terse."
    ui.server.upstream.script(
        Reply.text("First answer.", usage=(5, 2, 0, 0, 0)),
        Reply.text("Second answer.", usage=(9, 2, 0, 0, 0)),
    )
    await chat(ui.server, "first question", system=system)
    history = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "First answer."},
    ]
    # The follow-up resends the system prompt and the history: same contextKey, one thread.
    await chat(ui.server, "second question", system=system, history=history)
    await expect(ui.rows()).to_have_count(2)
    await ui.rows().first.click()
    convo = ui.page.locator("#tab-body .convo")
    await expect(convo.locator(".is-response .blk-text")).to_have_text("Second answer.")
    await expect(convo.locator(".role-user .blk-text")).to_have_text(["second question"])
    await ui.page.locator("#toggle-history").click()
    await expect(convo.locator(".role-user .blk-text")).to_have_text(
        ["first question", "second question"]
    )


async def test_text_filter_narrows_and_clear_empties(ui: UI) -> None:
    from playwright.async_api import expect

    await chat(ui.server, "hello openai", lane="oa")
    await chat(ui.server, "hello gemini", lane="ge")
    await expect(ui.rows()).to_have_count(2)
    await ui.page.locator("#f-text").fill("gemini")
    await expect(ui.rows()).to_have_count(1)
    await expect(ui.rows().first.locator(".c-model")).to_contain_text("gemini")
    await expect(ui.page.locator("#f-count")).to_have_text("1 shown / 2 captured")
    await ui.page.locator("#f-text").fill("")
    await expect(ui.rows()).to_have_count(2)

    await ui.page.locator("#clear-btn").click()
    await expect(ui.page.locator("#flow-body tr")).to_have_count(0)
    await expect(ui.page.locator("#empty")).to_be_visible()
    assert await records(ui.server) == []


async def test_keyboard_moves_and_opens(ui: UI) -> None:
    from playwright.async_api import expect

    await chat(ui.server, "one")
    await chat(ui.server, "two")
    await expect(ui.rows()).to_have_count(2)
    await ui.page.locator("#flows").focus()
    await ui.page.keyboard.press("j")
    await expect(ui.rows().nth(0)).to_have_class("flow is-llm selected")
    await ui.page.keyboard.press("j")
    await expect(ui.rows().nth(1)).to_have_class("flow is-llm selected")
    await ui.page.keyboard.press("Escape")
    await expect(ui.page.locator("#detail")).to_be_hidden()
    await ui.page.keyboard.press("k")
    await ui.page.keyboard.press("Enter")
    await expect(ui.page.locator("#detail")).to_be_visible()
    await expect(ui.page.locator("#tab-body .role-user .blk-text")).to_have_text("two")


async def test_annotation_persists_across_reload(ui: UI) -> None:
    from playwright.async_api import expect

    await chat(ui.server, "annotate me")
    await ui.rows().first.click()
    await ui.page.locator(".tab[data-tab=annotate]").click()
    await ui.page.locator("#annotation").fill("suspicious prompt, check later")
    await ui.page.locator("#annotation-save").click()
    await expect(ui.page.locator("#annotation-status")).to_have_text("saved")
    (record,) = await records(ui.server)
    assert record["annotation"] == "suspicious prompt, check later"

    await ui.page.reload()
    await expect(ui.page.locator("#conn")).to_have_class("conn conn-live")
    await ui.rows().first.click()
    await ui.page.locator(".tab[data-tab=annotate]").click()
    await expect(ui.page.locator("#annotation")).to_have_value("suspicious prompt, check later")


async def test_record_session_start_and_stop(ui: UI) -> None:
    from playwright.async_api import expect

    await ui.page.locator("#session-name").fill("bug 42 repro")
    await ui.page.locator("#rec-btn").click()
    await expect(ui.page.locator("#rec-status")).to_contain_text("REC bug 42 repro")
    await expect(ui.page.locator("#rec-btn")).to_have_text("■ Stop")
    await chat(ui.server, "inside the session")
    await expect(ui.rows()).to_have_count(1)
    await ui.page.locator("#rec-btn").click()
    await expect(ui.page.locator("#rec-btn")).to_have_text("● Record")
    await ui.page.locator("#sessions-menu summary").click()
    session_row = ui.page.locator(".session-row", has_text="bug 42 repro")
    await expect(session_row).to_contain_text("ended")
    await expect(session_row).to_contain_text("1 calls")
    sessions = (await ui.server.api("GET", f"{INSPECTOR}/sessions")).json()
    listed = sessions if isinstance(sessions, list) else sessions.get("sessions", [])
    assert [s["name"] for s in listed] == ["bug 42 repro"]
    assert listed[0]["ended_at"]


async def test_hostile_text_is_rendered_as_text(ui: UI) -> None:
    from playwright.async_api import expect

    ui.server.upstream.script(Reply.text(f"echo {HOSTILE}"))
    await chat(ui.server, HOSTILE, system=f"sys {HOSTILE}")
    await ui.rows().first.click()
    convo = ui.page.locator("#tab-body .convo")
    await expect(convo.locator(".role-user .blk-text")).to_have_text(HOSTILE)
    await expect(convo.locator(".is-response .blk-text")).to_have_text(f"echo {HOSTILE}")
    for tab in ("response", "request", "timing", "conversation"):
        await ui.page.locator(f".tab[data-tab={tab}]").click()
    await ui.page.locator("#f-text").fill("<img")
    await expect(ui.page.locator("img")).to_have_count(0)
    assert ui.dialogs == []
    assert ui.page_errors == []


async def test_replay_shows_the_new_response(ui: UI) -> None:
    from playwright.async_api import expect

    ui.server.upstream.script(Reply.text("original"), Reply.text("replayed answer"))
    await chat(ui.server, "replay me")
    await ui.rows().first.click()
    await ui.page.locator(".tab[data-tab=replay]").click()
    await ui.page.locator("#resend-run").click()
    # Rendered as the answer's turns beside the recorded one, never raw SSE or JSON.
    result = ui.page.locator("#resend-result")
    await expect(result.locator(".answer-new .blk-text")).to_have_text("replayed answer")
    await expect(result.locator(".answer-old .blk-text")).to_have_text("original")
    await expect(ui.rows()).to_have_count(2)


async def test_capture_actions_say_when_capture_is_not_running(ui: UI) -> None:
    from playwright.async_api import expect

    # The test server runs no mitmproxy: the capture actions answer 503 and the UI says so.
    toggle = ui.page.locator("#http-proxy-toggle")
    await expect(toggle).to_contain_text("off")
    await toggle.click()
    await expect(ui.page.locator("#capture-down")).to_have_text("capture not running")
    await expect(ui.page.locator("#capture-msg")).to_contain_text("http-proxy:")
    await expect(toggle).to_contain_text("off")
    assert ui.page_errors == []


# --------------------------------------------------------------------------- screenshot


async def sample_traffic(server: Server) -> None:
    """A few calls of every kind: a thread (text then streamed), an Anthropic stream with
    thinking, a tool call and its follow-up, and an upstream error."""
    system = "You are a senior Python engineer. Answer briefly and show code when useful."
    agent_system = "You are a coding agent with tools. Think step by step."
    server.upstream.script(
        Reply.text(
            "Use `functools.cache` on a pure function; it memoizes by arguments.",
            usage=(412, 38, 0, 0, 0),
        ),
        Reply.text(
            "Yes: `cache` never evicts, so for unbounded inputs prefer `lru_cache(maxsize=1024)`.",
            usage=(468, 41, 320, 0, 0),
        ),
        Reply.thinking(
            "The user wants a haiku about proxies; keep it 5-7-5.",
            "sig-1",
            "Packets pause mid-flight,\na quiet tap reads the words,\nthen lets them go on.",
            usage=(96, 57, 0, 0, 24),
        ),
        Reply.tools(
            [ToolCall("call_7Qx", "get_weather", '{"city": "Lisbon", "unit": "celsius"}')],
            usage=(188, 22, 0, 0, 0),
        ),
        Reply.error(429, "rate limit exceeded, retry in 20s"),
        Reply.text("Lisbon: 21 °C and sunny, a good day for a walk.", usage=(236, 14, 0, 0, 0)),
    )
    await chat(server, "How do I memoize a function?", system=system)
    history = [
        {"role": "user", "content": "How do I memoize a function?"},
        {
            "role": "assistant",
            "content": "Use `functools.cache` on a pure function; it memoizes by arguments.",
        },
    ]
    await chat(server, "Does it ever evict entries?", system=system, history=history, stream=True)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        resp = await client.post(
            "/v1/messages",
            json={
                "model": server.model("an"),
                "max_tokens": 2048,
                "stream": True,
                "system": "You write short poems.",
                "thinking": {"type": "enabled", "budget_tokens": 1024},
                "messages": [{"role": "user", "content": "A haiku about proxies, please."}],
            },
        )
        assert resp.status_code == 200, resp.text
    await chat(
        server, "What's the weather in Lisbon?", system=agent_system, tools=[WEATHER_TOOL_OPENAI]
    )
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        resp = await client.post(
            f"/v1beta/models/{server.model('ge')}:generateContent",
            json={"contents": [{"role": "user", "parts": [{"text": "Ping?"}]}]},
        )
        assert resp.status_code >= 400
    tool_history: list[dict[str, Any]] = [
        {"role": "user", "content": "What's the weather in Lisbon?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_7Qx",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"city": "Lisbon", "unit": "celsius"}',
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_7Qx", "content": '{"temp": 21, "sky": "sunny"}'},
    ]
    await chat(
        server,
        "Summarise it in one line.",
        system=agent_system,
        history=tool_history,
        tools=[WEATHER_TOOL_OPENAI],
    )


@pytest.mark.skipif(not os.environ.get("LLMTAP_SCREENSHOT"), reason="LLMTAP_SCREENSHOT not set")
async def test_screenshot(ui: UI) -> None:
    from playwright.async_api import expect

    await sample_traffic(ui.server)
    await expect(ui.rows()).to_have_count(6)
    # Newest first: the tool-result follow-up, which shows what it added to its thread.
    await ui.rows().first.click()
    await ui.page.locator("#toggle-history").click()
    await expect(ui.page.locator("#tab-body .blk-tool-use")).to_have_count(1)
    await ui.page.mouse.move(0, 0)
    out = Path(os.environ["LLMTAP_SCREENSHOT"])
    out.parent.mkdir(parents=True, exist_ok=True)
    png = await ui.page.screenshot(path=str(out), full_page=False)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
