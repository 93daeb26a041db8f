"""The unmodified agent CLIs under ``llmtap run``, with their DEFAULT hosts: Claude Code's
call to api.anthropic.com and Codex's to api.openai.com are diverted by a ``*`` mapping to a
fake upstream of another wire format; with no mapping the same call reaches a TLS fake "real
origin" (resolved through a loopback DNS server, certificate verified). Offline: every host
the agents call resolves to loopback, and the records show nothing else was reached."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.addons.agentstack import Stack, agent_stack
from tests.addons.proc import Llmtap, llmtap_argv
from tests.addons.test_http_proxy import records
from tests.agents.harness import run_agent
from tests.fakes.upstream import Reply

pytestmark = pytest.mark.timeout(300)

HOSTS = ("api.anthropic.com", "api.openai.com", "chatgpt.com")


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Stack]:
    # No AgentBridge: `llmtap run` points the agents at the HTTP proxy itself.
    async with agent_stack(tmp_path, HOSTS, bridge=False) as stack:
        yield stack


async def llmtap_run(app: Llmtap, agent: str, model: str, home: Path) -> tuple[int | None, str]:
    """``llmtap run -- <agent> <prompt>``: the agent as the harness configures it for its
    default hosts, started by llmtap's own run command (proxy, CA variables, NO_PROXY)."""
    wrapper = llmtap_argv("run", "--data-dir", str(app.data_dir), "--port", str(app.port), "--")
    run = await run_agent(
        agent,
        "say hi",
        home=home,
        model=model,
        wrapper=wrapper,
        env={"PYTHONPATH": app.env["PYTHONPATH"]},  # what `llmtap run` itself needs
        timeout=180,
    )
    return run.returncode, run.describe()


def agent_records(app: Llmtap, agent: str, timeout: float = 15) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = [
            r
            for r in records(app)
            if r["agent"] == agent and r["method"] == "POST" and r["status"] != "in-flight"
        ]
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"no final record for {agent}: {records(app)}")


def only_agent_hosts(app: Llmtap) -> None:
    hosts = {r["host"] for r in records(app)}
    assert hosts <= set(HOSTS), f"something left loopback's reach: {hosts}"


@pytest.mark.parametrize(
    ("agent", "agent_id", "model", "host", "target", "upstream_path"),
    [
        ("claude", "claude-code", "claude-sonnet-4-5", "api.anthropic.com", "fo/gpt-4o-mini",
         "/chat/completions"),
        ("codex", "codex", "gpt-5-codex", "api.openai.com", "fa/claude-x", "/messages"),
    ],
)  # fmt: skip
async def test_llmtap_run_agent_is_diverted_by_a_star_mapping(
    setup: Stack,
    tmp_path: Path,
    agent: str,
    agent_id: str,
    model: str,
    host: str,
    target: str,
    upstream_path: str,
) -> None:
    setup.map(agent_id, [("*", target)])
    answer = f"Hi from the mapped provider to {agent}"
    setup.upstream.default_reply = Reply.text(answer, usage=(21, 7, 0, 0, 0))
    code, out = await llmtap_run(setup.app, agent, model, tmp_path / "home")
    assert code == 0, out + setup.app.log()[-3000:]
    assert answer in out
    assert setup.upstream.requests and setup.upstream.requests[-1].path.endswith(upstream_path)
    recs = [r for r in agent_records(setup.app, agent_id) if r["mappedModel"] == target]
    assert recs, records(setup.app)
    rec = recs[-1]
    assert (rec["host"], rec["source"], rec["status"]) == (host, "http-proxy", 200)
    assert rec["sourceModel"] and rec["sourceModel"].startswith(model.split("-")[0])
    # Nothing of the chat call reached the real origin (its other paths may, untouched), not
    # even Codex's WebSocket on the Responses path: the socket itself was diverted (its calls
    # are the records above, one each).
    chat = [q.path for q in setup.origin.requests if q.path.endswith(("/messages", "/responses"))]
    assert chat == [], [(q.method, q.path) for q in setup.origin.requests]
    if agent == "codex":
        sockets = [r for r in records(setup.app) if r["method"] == "GET" and r["status"] == 101]
        assert [(r["host"], r["path"], r["agent"]) for r in sockets] == [
            (host, "/v1/responses", agent_id)
        ], records(setup.app)
    only_agent_hosts(setup.app)


async def test_llmtap_run_claude_without_mapping_reaches_the_real_origin(
    setup: Stack, tmp_path: Path
) -> None:
    setup.origin.default_reply = Reply.text("Hi from the real origin", usage=(9, 3, 0, 0, 0))
    code, out = await llmtap_run(setup.app, "claude", "claude-sonnet-4-5", tmp_path / "home")
    assert code == 0, out + setup.app.log()[-3000:]
    assert "Hi from the real origin" in out
    assert [q for q in setup.origin.requests if q.path.startswith("/v1/messages")]
    assert setup.upstream.requests == []
    rec = agent_records(setup.app, "claude-code")[-1]
    assert rec["host"] == "api.anthropic.com" and rec["mappedModel"] is None
    only_agent_hosts(setup.app)
