"""``llmtap up`` as a user runs it: one real process (mitmproxy Master + aiohttp app), a
provider added on the command line, the SDKs against it, Ctrl-C stops it cleanly."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import anthropic
import openai

from tests.addons.proc import free_port, start_llmtap
from tests.fakes.upstream import FakeUpstream, Reply, ToolCall

TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    },
}


async def test_up_serves_both_sdks_streaming_with_tools_and_stops_cleanly(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    app = start_llmtap(
        data,
        "--provider",
        f"openai={fake_upstream.url}/v1,name=up,key=sk-cli-secret-0123456789abcdef",
    )
    try:
        assert "is up" in app.log()
        state = json.loads((data / "server.json").read_text())
        assert state["port"] == app.port

        fake_upstream.script(
            Reply.tools([ToolCall("call_1", "lookup", '{"q": "llmtap"}')]),
            Reply.text("streamed answer here"),
        )
        client = openai.AsyncOpenAI(base_url=app.url + "/v1", api_key="unused")
        first = await client.chat.completions.create(
            model="up/gpt-4o-mini",
            messages=[{"role": "user", "content": "look it up"}],
            tools=[TOOL],  # type: ignore[list-item]
        )
        call = (first.choices[0].message.tool_calls or [])[0]
        assert call.function.name == "lookup"  # type: ignore[union-attr]
        text = ""
        async for chunk in await client.chat.completions.create(
            model="up/gpt-4o-mini",
            messages=[{"role": "user", "content": "again"}],
            stream=True,
        ):
            for choice in chunk.choices:
                text += choice.delta.content or ""
        assert text == "streamed answer here"

        fake_upstream.script(Reply.text("from anthropic sdk"))
        aclient = anthropic.AsyncAnthropic(base_url=app.url, api_key="unused")
        async with aclient.messages.stream(
            model="up/gpt-4o-mini", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            message = await stream.get_final_message()
        assert message.content[0].type == "text"
        assert message.content[0].text == "from anthropic sdk"
        # The key given on the command line went upstream and nowhere else.
        assert fake_upstream.requests[-1].headers["authorization"].endswith("0123456789abcdef")
    finally:
        code = app.stop(signal.SIGINT)
    assert code == 0, app.log()
    assert not (data / "server.json").exists()
    assert "sk-cli-secret-0123456789abcdef" not in app.log()


def test_up_restart_keeps_the_provider(tmp_path: Path) -> None:
    data = tmp_path / "data"
    spec = f"openai=http://127.0.0.1:{free_port()}/v1,name=keep"
    first = start_llmtap(data, "--provider", spec)
    first.stop()
    second = start_llmtap(data, "--provider", spec)  # idempotent: no duplicate connection
    try:
        conns = second.api("GET", "/api/providers").json()["connections"]
        assert [c["name"] for c in conns] == ["keep"]
    finally:
        assert second.stop() == 0


def test_provider_urls_must_be_forgiving_in_up(tmp_path: Path) -> None:
    """``--provider anthropic=<the SDK's base URL>`` is stored and shown with its version
    segment, and the other spelling of the same URL on the next start is the same connection."""
    data = tmp_path / "data"
    host = f"http://127.0.0.1:{free_port()}"
    first = start_llmtap(data, "--provider", f"anthropic={host}/")
    first.stop()
    assert f"provider anthropic (anthropic) -> {host}/v1" in first.log()
    second = start_llmtap(data, "--provider", f"anthropic={host}/v1/messages")
    try:
        conns = second.api("GET", "/api/providers").json()["connections"]
        assert [(c["name"], c["url"]) for c in conns] == [("anthropic", f"{host}/v1")]
    finally:
        assert second.stop() == 0


def test_up_port_in_use_fails_with_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    first = start_llmtap(tmp_path / "a", port=port)
    try:
        second = start_llmtap(tmp_path / "b", port=port, wait=False)
        code = second.proc.wait(30)
        # Issue 12: a second up on a port another llmtap holds names it, in one line.
        assert code != 0
        assert f"already running (pid {first.proc.pid}, port {port})" in second.log()
        assert "Traceback" not in second.log()
    finally:
        first.stop()
