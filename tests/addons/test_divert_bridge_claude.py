"""Issue 10's "done when", driven the way it reads: ``llmtap ca trust`` (a temp trust store),
``llmtap agents enable claude-code`` (the listener on :443, lines in the hosts file),
``llmtap agents map claude-code '*' fo/gpt-4o-mini``, the UNMODIFIED Claude Code binary with
its default host api.anthropic.com gets a streaming Claude-shaped answer from a fake OpenAI
provider, recorded with agent/sourceModel/mappedModel, and ``llmtap agents disable
claude-code`` leaves the hosts file exactly as it was.

The real thing needs /etc/hosts and port 443, so it runs in private namespaces: a mount
namespace where a temp file is bind-mounted over /etc/hosts (llmtap edits its default path,
which is that temp file) and a network namespace of its own (only ``lo``), so 443 belongs to
this test alone and nothing can leave the machine. The test re-runs itself under
``unshare -m -n``; where that is not permitted it skips saying why, and the same flow runs
with a client that resolves the agent host by reading the hosts file llmtap wrote and connects
to the bridge with SNI = the agent host (the second test, which always runs)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from tests.addons.bridgeenv import ORIGINAL, BridgeEnv, bridge_env
from tests.addons.proc import ROOT, Llmtap, free_port, start_llmtap
from tests.addons.test_divert_agents import agent_records
from tests.addons.test_http_proxy import wait_listening
from tests.agents.harness import binary, run_agent
from tests.fakes.fixtures import tls_cert_for
from tests.fakes.upstream import FakeUpstream, Reply
from tests.router.bridge.dnsfake import FakeDns

pytestmark = pytest.mark.timeout(300)

HOST = "api.anthropic.com"
TARGET = "fo/gpt-4o-mini"
MODEL = "claude-sonnet-4-5"
ANSWER = "Hi from the mapped OpenAI provider, via the AgentBridge"
IN_NAMESPACE = "LLMTAP_TEST_IN_NAMESPACE"  # set by the outer run for the inner one
HOSTS = Path("/etc/hosts")


def namespace_problem() -> str | None:
    """Why this machine cannot give the test private mount and network namespaces."""
    if not sys.platform.startswith("linux"):
        return "private mount/network namespaces are Linux only"
    if os.geteuid() != 0:
        return "needs root (mount --bind over /etc/hosts, port 443); CI runs as root"
    for tool in ("unshare", "ip", "mount"):
        if shutil.which(tool) is None:
            return f"{tool}(8) is not installed"
    probe = subprocess.run(
        ["unshare", "-m", "-n", "--propagation", "private", "ip", "link", "set", "lo", "up"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        return f"unshare -m -n is not permitted here: {probe.stderr.strip()}"
    return None


@dataclass
class Flow:
    env: BridgeEnv
    app: Llmtap
    upstream: FakeUpstream
    origin: FakeUpstream
    hosts_source: Path  # the file whose bytes must come back exactly

    def cli(self, *argv: str) -> dict:
        run = self.env.cli(*argv, "--json")
        assert run.returncode == 0, f"llmtap {' '.join(argv)}: {run.stdout}{run.stderr}"
        out: dict = json.loads(run.stdout)
        return out


@contextlib.asynccontextmanager
async def _flow_in(tmp_path: Path) -> AsyncIterator[Flow]:
    """llmtap up with a fake OpenAI provider and a TLS fake "real origin" for passthrough
    (resolved through a loopback DNS server, never the hosts file)."""
    inside = os.environ.get(IN_NAMESPACE) == "1"
    env = bridge_env(tmp_path)
    hosts_source = env.hosts
    env.overrides["LLMTAP_BRIDGE_PORT"] = str(443 if inside else free_port())
    if inside:
        # llmtap edits its default hosts file, /etc/hosts, which is our temp file here.
        for argv in (
            ["ip", "link", "set", "lo", "up"],
            ["mount", "--bind", str(env.hosts), str(HOSTS)],
        ):
            await asyncio.to_thread(subprocess.run, argv, check=True, timeout=30)
        env.hosts = HOSTS
        env.overrides["LLMTAP_HOSTS_FILE"] = None
    origin_tls = tls_cert_for(tmp_path, hosts=(HOST,), name="origin")
    with FakeDns({HOST: ["127.0.0.1"]}) as dns:
        async with (
            FakeUpstream() as upstream,
            FakeUpstream(ssl_context=origin_tls.server_context()) as origin,
        ):
            env.overrides["LLMTAP_DNS_SERVERS"] = dns.spec
            env.overrides["LLMTAP_ORIGIN_PORT"] = str(origin.port)
            app = start_llmtap(
                env.data_dir,
                "--upstream-ca",
                str(origin_tls.ca_pem),
                "--provider",
                f"openai={upstream.url}/v1,name=fo,models=gpt-4o-mini",
                env=env.env,
            )
            try:
                yield Flow(env, app, upstream, origin, hosts_source)
            finally:
                assert app.stop() == 0, app.log()


def set_up(flow: Flow) -> int:
    """`llmtap ca trust`, `agents enable claude-code`, `agents map claude-code '*' ...`;
    returns the bridge port."""
    trust = flow.cli("ca", "trust")
    assert trust["trusted"] is True, trust
    assert ["update-ca-certificates"] in flow.env.fake.calls(), "the trust store never changed"
    enabled = flow.cli("agents", "enable", "claude-code")
    assert f"127.0.0.1 {HOST} # llmtap" in enabled["hostsLinesAdded"], enabled
    assert f"::1 {HOST} # llmtap" in enabled["hostsLinesAdded"], enabled
    assert flow.env.hosts.read_bytes().startswith(ORIGINAL)
    mapped = flow.cli("agents", "map", "claude-code", "*", TARGET)
    assert [(m["source_model"], m["target_model"]) for m in mapped] == [("*", TARGET)]
    state = flow.cli("bridge", "status")
    assert state["running"] is True, state
    port = int(state["port"])
    wait_listening(port)
    return port


def check_diverted(flow: Flow, source_model_prefix: str) -> None:
    """The fake OpenAI provider answered a streamed call; one record says who and how."""
    chats = [q for q in flow.upstream.requests if q.path.endswith("/chat/completions")]
    assert chats, [q.path for q in flow.upstream.requests]
    assert chats[-1].json is not None and chats[-1].json["model"] == "gpt-4o-mini"
    assert chats[-1].json.get("stream") is True  # the agent's call streamed end to end
    # Nothing of the chat call reached the real origin.
    assert not [q for q in flow.origin.requests if q.path.startswith("/v1/messages")]
    rec = [r for r in agent_records(flow.app, "claude-code") if r["mappedModel"] == TARGET][-1]
    assert (rec["host"], rec["source"], rec["status"]) == (HOST, "agent-bridge", 200), rec
    assert rec["sourceModel"].startswith(source_model_prefix), rec
    content_type = {k.lower(): v for k, v in rec["responseHeaders"].items()}["content-type"]
    assert "text/event-stream" in content_type, rec["responseHeaders"]
    assert ANSWER.split()[0] in (rec["responseBody"] or ""), rec


def tear_down(flow: Flow) -> None:
    disabled = flow.cli("agents", "disable", "claude-code")
    assert f"127.0.0.1 {HOST} # llmtap" in disabled["hostsLinesRemoved"], disabled
    assert flow.env.hosts.read_bytes() == ORIGINAL
    assert flow.hosts_source.read_bytes() == ORIGINAL


async def test_claude_code_unchanged_through_the_bridge_on_443(tmp_path: Path) -> None:
    if os.environ.get(IN_NAMESPACE) != "1":
        binary("claude")  # skips (fails under CI) where the agent CLIs are not installed
        if problem := namespace_problem():
            pytest.skip(
                f"{problem}: the same flow runs with an SNI client in "
                "test_same_flow_with_a_client_resolving_through_the_hosts_file"
            )
        here = f"{Path(__file__).relative_to(ROOT)}::test_claude_code_unchanged_through_the_bridge_on_443"
        inner = await asyncio.to_thread(
            subprocess.run,
            ["unshare", "-m", "-n", "--propagation", "private", "--",
             sys.executable, "-m", "pytest", here, "-q", "-p", "no:randomly", "-rA"],
            cwd=ROOT,
            env={**os.environ, IN_NAMESPACE: "1"},
            capture_output=True,
            text=True,
            timeout=280,
        )  # fmt: skip
        out = inner.stdout[-8000:] + inner.stderr
        assert inner.returncode == 0 and "1 passed" in inner.stdout, out
        return
    # In the namespaces: this process, llmtap, the fakes and Claude Code share /etc/hosts
    # (our temp file) and a network with nothing but lo.
    async with _flow_in(tmp_path) as flow:
        set_up(flow)
        assert f"127.0.0.1 {HOST} # llmtap" in HOSTS.read_text()  # noqa: ASYNC240
        assert socket.getaddrinfo(HOST, 443)[0][4][0] in ("127.0.0.1", "::1")
        flow.upstream.default_reply = Reply.text(ANSWER, usage=(21, 7, 0, 0, 0))
        run = await run_agent(
            "claude",
            "say hi",
            home=tmp_path / "home-claude",
            model=MODEL,
            env={
                # No proxy of any kind: the agent resolves api.anthropic.com itself.
                **dict.fromkeys(
                    (
                        "HTTP_PROXY",
                        "HTTPS_PROXY",
                        "ALL_PROXY",
                        "http_proxy",
                        "https_proxy",
                        "all_proxy",
                    ),
                    None,
                ),
                "NODE_EXTRA_CA_CERTS": str(flow.env.bundle),  # what `ca trust` installed
            },
            timeout=180,
        )
        assert run.returncode == 0, run.describe() + flow.app.log()[-3000:]
        assert ANSWER in run.stdout, run.describe()
        check_diverted(flow, "claude")
        tear_down(flow)


class HostsFileResolver(AbstractResolver):
    """Resolves like the system would with llmtap's lines: reads the hosts file llmtap wrote
    and fails for a name it does not redirect, so the client only reaches the bridge through
    what `agents enable` put there."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        for line in self.path.read_text().splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) >= 2 and host in fields[1:] and fields[0] == "127.0.0.1":
                return [
                    ResolveResult(
                        hostname=host, host=fields[0], port=port, family=socket.AF_INET,
                        proto=0, flags=0,
                    )
                ]  # fmt: skip
        raise OSError(f"{host} is not in {self.path}")

    async def close(self) -> None:
        return None


async def test_same_flow_with_a_client_resolving_through_the_hosts_file(tmp_path: Path) -> None:
    """The fallback for machines without namespaces (and a quick check everywhere): the same
    commands, then a Claude-Code-shaped streaming call with SNI = api.anthropic.com."""
    async with _flow_in(tmp_path) as flow:
        port = set_up(flow)
        flow.upstream.default_reply = Reply.text(ANSWER, usage=(21, 7, 0, 0, 0))
        ctx = ssl.create_default_context(cafile=str(flow.env.bundle))  # what `ca trust` made
        connector = aiohttp.TCPConnector(ssl=ctx, resolver=HostsFileResolver(flow.env.hosts))
        body = {
            "model": MODEL,
            "max_tokens": 1024,
            "stream": True,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "say hi"}]}],
        }
        events: list[dict] = []
        async with (
            aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=60)
            ) as session,
            session.post(
                f"https://{HOST}:{port}/v1/messages?beta=true",
                json=body,
                headers={
                    "Host": HOST,
                    "x-api-key": "sk-ant-agent-own-key-0123456789",
                    "anthropic-version": "2023-06-01",
                },
            ) as resp,
        ):
            assert resp.status == 200, await resp.text()
            assert resp.headers["content-type"].startswith("text/event-stream")
            async for raw in resp.content:
                line = raw.decode().strip()
                if line.startswith("data:"):
                    events.append(json.loads(line[5:]))
        types = [e["type"] for e in events]
        assert types[0] == "message_start" and types[-1] == "message_stop", types
        text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
        assert text == ANSWER
        check_diverted(flow, MODEL)
        tear_down(flow)
