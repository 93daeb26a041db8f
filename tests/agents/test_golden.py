"""Golden tests from the real agents' requests (see golden.py for the files and the switch).

1. ``test_capture_matches_fixture``: the pinned binary, pointed at the fake upstream in its own
   format, still sends requests of the committed shape (a new field fails here first).
2. ``test_codec_golden``: every committed request, parsed by its codec and rendered by every
   codec, gives the committed bodies and dropped-field lists.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from router.formats import get_codec
from router.formats.tools import flat_name
from tests.agents import golden
from tests.agents.harness import NPM_DIR, Target, run_agent
from tests.fakes.upstream import FakeUpstream

SOURCE = {"claude": "anthropic", "codex": "responses", "opencode": "openai-chat"}
PACKAGE = {
    "claude": "@anthropic-ai/claude-code",
    "codex": "@openai/codex",
    "opencode": "opencode-ai",
}
# "" keeps the agent's own default model: the request real users send.
CAPTURE_MODEL = {"claude": "", "codex": "", "opencode": "gpt-4.1"}
GENERATION = ("/messages", "/responses", "/chat/completions")


def pinned_version(agent: str) -> str:
    lock = json.loads((NPM_DIR / "package-lock.json").read_text())
    return str(lock["packages"][f"node_modules/{PACKAGE[agent]}"]["version"])


def _shapes(calls: list[dict[str, Any]]) -> list[tuple[str, list[str], list[str]]]:
    return sorted((c["path"], sorted(c["headers"]), sorted(golden.shape(c["body"]))) for c in calls)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("agent", list(SOURCE))
async def test_capture_matches_fixture(
    fake_upstream: FakeUpstream, tmp_path: Path, agent: str
) -> None:
    home = tmp_path / "home"
    fake_upstream.default_reply = fake_upstream.default_reply.with_(content="golden hi")
    run = await run_agent(
        agent, "say hi", home=home, target=Target(fake_upstream.url, CAPTURE_MODEL[agent])
    )
    assert run.returncode == 0 and "golden hi" in run.stdout, run.describe()
    assert run.attempts == [], run.describe()
    calls = [
        golden.capture_call(r.path, r.headers, r.json, str(home))
        for r in fake_upstream.requests
        if r.method == "POST" and r.path.endswith(GENERATION)
    ]
    assert calls, f"{agent} sent no generation request: {[r.path for r in fake_upstream.requests]}"
    fixture = {
        "agent": agent,
        "package": PACKAGE[agent],
        "version": pinned_version(agent),
        "format": SOURCE[agent],
        "calls": calls,
    }
    committed = golden.checked_in(golden.FIXTURES / f"{agent}.json", fixture)
    if committed is None:
        return
    assert committed["version"] == fixture["version"], (
        f"{PACKAGE[agent]} was bumped: re-capture with LLMTAP_REGEN_GOLDEN=1 and review the diff"
    )
    live, kept = _shapes(calls), _shapes(committed["calls"])
    if live != kept:
        now = {p for _, h, s in live for p in [*h, *s]}
        then = {p for _, h, s in kept for p in [*h, *s]}
        pytest.fail(
            f"{agent} now sends requests of another shape (LLMTAP_REGEN_GOLDEN=1 to accept):\n"
            f"paths: {[c[0] for c in kept]} -> {[c[0] for c in live]}\n"
            f"new: {sorted(now - then)}\ngone: {sorted(then - now)}"
        )


def render_all(fixture: dict[str, Any], index: int) -> dict[str, Any]:
    """The request parsed by the agent's codec and rendered by every codec."""
    body = fixture["calls"][index]["body"]
    out: dict[str, Any] = {}
    for fmt in golden.RENDER_TO:
        req = get_codec(fixture["format"]).parse_request(copy.deepcopy(body))
        req.model = golden.GOLDEN_MODEL
        rendered = get_codec(fmt).render_request(req)
        out[fmt] = {"dropped": sorted(req.dropped), "body": rendered}
    return out


def _golden_cases() -> list[Any]:
    cases = []
    for agent in SOURCE:
        path = golden.FIXTURES / f"{agent}.json"
        if not path.exists():
            continue
        for index in range(len(golden.load(path)["calls"])):
            cases.append(pytest.param(agent, index, id=f"{agent}-{index}"))
    return cases


@pytest.mark.parametrize(("agent", "index"), _golden_cases())
def test_codec_golden(agent: str, index: int) -> None:
    fixture = golden.load(golden.FIXTURES / f"{agent}.json")
    got = json.loads(json.dumps(render_all(fixture, index)))  # tuples -> lists, as on disk
    expected = golden.checked_in(golden.EXPECTED / f"{agent}-{index}.json", got)
    if expected is None:
        return
    for fmt in golden.RENDER_TO:
        assert got[fmt] == expected[fmt], f"{agent} call {index} rendered as {fmt} changed"


def _tool_names(fmt: str, body: dict[str, Any]) -> set[str]:
    """The tool names a rendered request offers the model."""
    body = body.get("request", body) if fmt == "cloudcode" else body
    names: set[str] = set()
    tools = list(body.get("tools") or [])
    if fmt == "responses":  # also declared in input items, namespaces holding tools
        for item in body.get("input") or []:
            if isinstance(item, dict) and item.get("type") == "additional_tools":
                tools += item["tools"]
    for tool in tools:
        if fmt in ("gemini", "cloudcode"):
            names |= {d["name"] for d in tool.get("functionDeclarations") or []}
        elif fmt == "openai-chat":
            names.add(tool["function"]["name"])
        elif tool.get("type") == "namespace":
            names |= {flat_name(tool["name"], t["name"]) for t in tool["tools"]}
        else:
            names.add(tool["name"])
    return names


def _tool_cases() -> list[Any]:
    return [
        pytest.param(agent, id=agent)
        for agent in SOURCE
        if (golden.FIXTURES / f"{agent}.json").exists()
    ]


@pytest.mark.parametrize("agent", _tool_cases())
def test_agent_tools_survive_every_codec(agent: str) -> None:
    """An agent is useless without its tools: every codec must offer the model at least the
    agent's main-turn tools (the call that offers the most)."""
    fixture = golden.load(golden.FIXTURES / f"{agent}.json")
    index = max(
        range(len(fixture["calls"])),
        key=lambda i: len(json.dumps(fixture["calls"][i]["body"].get("tools") or [])),
    )
    rendered = render_all(fixture, index)
    offered = {fmt: _tool_names(fmt, out["body"]) for fmt, out in rendered.items()}
    assert all(offered.values()), f"{agent}'s tools lost on the way: {offered}"
    assert len({frozenset(names) for names in offered.values()}) == 1, offered
