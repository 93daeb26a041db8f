"""The agent host stack of the divert tests: a loopback DNS server that answers the agents'
hosts with 127.0.0.1, a TLS fake "real origin" holding a certificate for those hosts, a plain
fake upstream serving as the router's providers, and ``llmtap up`` pointed at all three
through its environment (a temp hosts file, never the machine's /etc/hosts)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, Unpack

import pytest

from tests.addons.proc import Llmtap, free_port, llmtap_up
from tests.addons.test_http_proxy import wait_listening
from tests.fakes.fixtures import TlsFiles, tls_cert_for
from tests.fakes.upstream import FakeUpstream
from tests.router.bridge.dnsfake import FakeDns

AGENT_HOSTS = (
    "api.anthropic.com",
    "chatgpt.com",
    "api.githubcopilot.com",
    "cloudcode-pa.googleapis.com",
)
BRIDGE_API = "/api/tools/agent-bridge"


def temp_hosts(tmp_path: Path) -> Path:
    """The hosts file llmtap manages in these tests (never the machine's /etc/hosts)."""
    path = tmp_path / "hosts"
    if not path.exists():
        path.write_text("127.0.0.1 localhost\n")
    return path


def loopback_dns(hosts: Iterable[str]) -> FakeDns:
    """A DNS server answering each of ``hosts`` with loopback (enter it to serve)."""
    return FakeDns({h: ["127.0.0.1"] for h in hosts})


def provider_args(upstream: FakeUpstream, *names: str) -> list[str]:
    """``--provider`` options for the router's connections on ``upstream``: ``fo`` (OpenAI,
    model gpt-4o-mini) and ``fa`` (Anthropic, model claude-x), or only those named."""
    specs = {
        "fo": f"openai={upstream.url}/v1,name=fo,models=gpt-4o-mini",
        "fa": f"anthropic={upstream.url},name=fa,models=claude-x",
    }
    return [arg for name in names or specs for arg in ("--provider", specs[name])]


def divert_env(
    dns: FakeDns,
    *,
    origin_port: int | None = None,
    bridge_port: int | None = None,
    hosts_file: Path | None = None,
    proxy: bool = False,
) -> dict[str, str]:
    """llmtap's environment for the divert path: passthrough resolves through ``dns`` and
    connects to ``origin_port``; with ``bridge_port`` the AgentBridge starts on it (0: a port
    of its own choosing) editing ``hosts_file``; with ``proxy`` the HTTP proxy starts too."""
    env = {"LLMTAP_DNS_SERVERS": dns.spec}
    if origin_port is not None:
        env["LLMTAP_ORIGIN_PORT"] = str(origin_port)
    if bridge_port is not None:
        if hosts_file is None:
            raise ValueError("a bridge in tests edits a temp hosts file, name it")
        env["LLMTAP_BRIDGE_AUTOSTART"] = "true"
        env["LLMTAP_HOSTS_FILE"] = str(hosts_file)
        env["LLMTAP_BRIDGE_PORT"] = str(bridge_port)
    if proxy:
        env["LLMTAP_HTTP_PROXY_AUTOSTART"] = "true"
    return env


@dataclass
class Stack:
    app: Llmtap
    bridge_port: int  # 0 when the stack runs no AgentBridge
    upstream: FakeUpstream  # the router's providers fo and fa (plain HTTP)
    origin: FakeUpstream  # the agents' "real origin" (TLS, cert for the agent hosts)
    origin_tls: TlsFiles
    dns: FakeDns

    def map(self, agent: str, pairs: list[tuple[str, str]]) -> None:
        """Replace the agent's mappings through the AgentBridge API (no restart)."""
        body = {"mappings": [{"source": s, "target": t} for s, t in pairs]}
        resp = self.app.api("PUT", f"{BRIDGE_API}/agents/{agent}/mappings", json=body)
        assert resp.status_code == 200, resp.text

    def detected(self, agent: str, count: int, timeout: float = 10) -> list[dict]:
        """``detected-models`` once the batched sightings reached the store."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            resp = self.app.api("GET", f"{BRIDGE_API}/agents/{agent}/detected-models")
            assert resp.status_code == 200, resp.text
            if sum(r["count"] for r in resp.json()) >= count:
                return list(resp.json())
            time.sleep(0.2)
        raise AssertionError(f"detected models of {agent}: {resp.json()}")


@contextlib.contextmanager
def divert_up(
    tmp_path: Path,
    dns: FakeDns,
    *args: str,
    origin_port: int | None = None,
    bridge: bool = True,
    bridge_port: int | None = None,
    proxy: bool = False,
    data_dir: Path | None = None,
    hosts_file: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[tuple[Llmtap, int]]:
    """``llmtap up ARGS`` on the divert path (see ``divert_env``), yielded once listening with
    its bridge port: the AgentBridge on ``bridge_port`` (a free one when None, one of its own
    choosing when 0) unless ``bridge`` is off, the HTTP proxy when ``proxy``. Stopped on exit,
    which must be clean. ``env`` is the base environment the divert variables go on top of."""
    if bridge and bridge_port is None:
        bridge_port = free_port()
    divert = divert_env(
        dns,
        origin_port=origin_port,
        bridge_port=bridge_port if bridge else None,
        hosts_file=hosts_file or temp_hosts(tmp_path),
        proxy=proxy,
    )
    with llmtap_up(data_dir or tmp_path / "data", *args, env={**(env or {}), **divert}) as app:
        if proxy:
            wait_listening(app.proxy_port)
        if bridge and bridge_port:
            wait_listening(bridge_port)
        yield app, bridge_port or 0


class DivertOptions(TypedDict, total=False):
    """``divert_up``'s keyword options that ``agent_stack`` passes on."""

    bridge: bool
    proxy: bool
    data_dir: Path
    hosts_file: Path
    env: Mapping[str, str]


@contextlib.asynccontextmanager
async def agent_stack(
    tmp_path: Path, hosts: Iterable[str] = AGENT_HOSTS, **options: Unpack[DivertOptions]
) -> AsyncIterator[Stack]:
    """The whole stack for ``hosts``, started by ``divert_up`` with ``options``."""
    hosts = tuple(hosts)
    origin_tls = tls_cert_for(tmp_path, hosts=hosts, name="origin")
    with loopback_dns(hosts) as dns:
        async with (
            FakeUpstream() as upstream,
            FakeUpstream(ssl_context=origin_tls.server_context()) as origin,
        ):
            args = ("--upstream-ca", str(origin_tls.ca_pem), *provider_args(upstream))
            with divert_up(tmp_path, dns, *args, origin_port=origin.port, **options) as running:
                yield Stack(*running, upstream, origin, origin_tls, dns)


@pytest.fixture
def dns() -> Iterator[FakeDns]:
    """A loopback DNS server answering every agent host."""
    with loopback_dns(AGENT_HOSTS) as server:
        yield server


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """The stack with the AgentBridge and the HTTP proxy both listening."""
    async with agent_stack(tmp_path, proxy=True) as running:
        yield running
