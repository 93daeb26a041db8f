"""A real headless Chromium (Debian's, driven by Playwright) on a page of a real llmtap server:
the fixtures every browser test of the UI shares (``browser_context``, ``ui``)."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.web.harness import Server

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class UI:
    page: Any
    server: Server
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def rows(self) -> Any:
        return self.page.locator("#flow-body tr.flow:visible")

    def row_for(self, text: str) -> Any:
        return self.page.locator("#flow-body tr.flow", has_text=text)

    async def open(self) -> None:
        from playwright.async_api import expect

        await self.page.goto(self.server.url + "/")
        await expect(self.page.locator("#conn")).to_have_class("conn conn-live")


# docs/screenshots/<view>.png come from the tests that drive each view; a plain test run writes
# them to a temp dir instead (so it never dirties the tree): scripts/screenshot sets this.
SCREENSHOTS_ENV = "LLMTAP_SCREENSHOTS_DIR"


async def screenshot(
    ui: UI, name: str, selector: str | None = None, top: str | None = None
) -> Path:
    """Write ``<name>.png`` of the element ``selector``, or of the window with the element
    ``top`` scrolled to its top, into $LLMTAP_SCREENSHOTS_DIR (a temp dir when unset)."""
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or tempfile.mkdtemp(prefix="llmtap-shots-"))
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    if top:
        await ui.page.locator(top).evaluate("el => el.scrollIntoView({block: 'start'})")
    await ui.page.mouse.move(0, 0)
    target = ui.page.locator(selector) if selector else ui.page
    out = folder / f"{name}.png"
    png = await target.screenshot(path=str(out))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return out


@pytest.fixture
async def browser_context(tmp_path: Path) -> AsyncIterator[Any]:
    if not HAVE_CHROMIUM:
        pytest.skip(f"{CHROMIUM} is absent (run scripts/browser or apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 900},
            color_scheme="dark",
        )
        try:
            yield context
        finally:
            await context.close()


@pytest.fixture
async def ui(browser_context: Any, server: Server) -> AsyncIterator[UI]:
    from playwright.async_api import expect

    expect.set_options(timeout=10_000)
    page = await browser_context.new_page()
    state = UI(page, server)
    page.on("console", lambda m: state.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: state.page_errors.append(str(exc)))
    page.on(
        "response", lambda r: state.failed.append((r.status, r.url)) if r.status >= 400 else None
    )

    async def on_dialog(dialog: Any) -> None:
        state.dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    await state.open()
    yield state


async def chat(server: Server, model: str, text: str = "hi") -> str:
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    try:
        done = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": text}]
        )
    finally:
        await client.close()
    return done.choices[0].message.content or ""


async def open_router(ui: UI) -> None:
    from playwright.async_api import expect

    await ui.page.locator(".view-tab[data-view=router]").click()
    await expect(ui.page.locator("#rt-providers .add-form")).to_be_visible()
