"""The capture-mode controller's AgentBridge interface on a real in-process mitmproxy master
(proxyserver and all): start, stop and restart at runtime on 127.0.0.1 and ::1, a held port
is a 409 naming its holder, a privileged port without permission names the fixes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mitmproxy import addons as mitm_addons
from mitmproxy import options
from mitmproxy.master import Master

from addons.modes import CaptureModes
from addons.options import LlmtapOptions
from router.errors import BadRequest, Conflict
from router.settings import Settings
from tests.addons.proc import ROOT, free_port


def listening(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.settimeout(2)
        return s.connect_ex((host, port)) == 0


@pytest.fixture
async def modes(tmp_path: Path) -> AsyncIterator[CaptureModes]:
    import asyncio

    settings = Settings(data_dir=tmp_path, bridge_port=free_port(), tools_path=str(tmp_path))
    opts = options.Options()
    master = Master(opts, event_loop=asyncio.get_running_loop())
    master.addons.add(*mitm_addons.default_addons())
    controller = CaptureModes(settings, master)
    master.addons.add(LlmtapOptions(), controller)
    opts.update(mode=[], confdir=str(tmp_path / "ca"), listen_host="127.0.0.1")
    run = asyncio.get_running_loop().create_task(master.run())
    await asyncio.sleep(0.2)  # `running` hooks
    try:
        yield controller
    finally:
        master.shutdown()
        await asyncio.wait_for(run, 10)


async def test_bridge_start_stop_restart_at_runtime(modes: CaptureModes) -> None:
    port = modes.settings.bridge_port
    assert modes.agent_bridge_state()["running"] is False
    state = await modes.agent_bridge("start")
    assert state["running"] is True and state["port"] == port
    assert listening("127.0.0.1", port)
    if "[::1]" in str(state["listen"]) or "::1" in state["listen"][-1]:
        assert listening("::1", port)
    assert state["lastStartedAt"] and state["certReady"] is True
    assert modes.state()["agentBridge"] == {"active": True, "port": port}

    first = state["lastStartedAt"]
    state = await modes.agent_bridge("restart")
    assert state["running"] is True and listening("127.0.0.1", port)
    assert state["lastStartedAt"] >= first

    state = await modes.agent_bridge("stop")
    assert state["running"] is False
    assert not listening("127.0.0.1", port)
    with pytest.raises(BadRequest):
        await modes.agent_bridge("explode")


async def test_bridge_port_held_is_409_naming_the_holder(modes: CaptureModes) -> None:
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", modes.settings.bridge_port))
        holder.listen()
        with pytest.raises(Conflict) as err:
            await modes.agent_bridge("start")
    message = err.value.message
    assert f"port {modes.settings.bridge_port}" in message
    assert "python" in message.lower() and str(os.getpid()) in message
    state = modes.agent_bridge_state()
    assert state["running"] is False and state["lastError"] == message


async def test_bypass_applies_through_the_options(modes: CaptureModes) -> None:
    modes.set_bypass(["*.internal.example"])
    assert list(modes.master.options.llmtap_bypass) == ["*.internal.example"]
    with pytest.raises(BadRequest):
        modes.set_bypass(["*"])
    assert list(modes.master.options.llmtap_bypass) == ["*.internal.example"]


def _unprivileged_port_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        return 1024


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
@pytest.mark.skipif(_unprivileged_port_start() <= 443, reason="443 is not privileged here")
def test_privileged_port_without_permission_names_the_fixes() -> None:
    code = (
        "from addons.modes import check_port_free\n"
        "from router.errors import Forbidden\n"
        "try:\n    check_port_free('127.0.0.1', 443)\n"
        "except Forbidden as e:\n    print(e.code, e.message)\n"
    )
    out = subprocess.run(
        # Without CAP_NET_BIND_SERVICE (even as root) port 443 cannot be bound.
        ["setpriv", "--bounding-set=-net_bind_service", sys.executable, "-c", code],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("permission_denied")
    for fix in ("root", "setcap cap_net_bind_service=+ep", "LLMTAP_BRIDGE_PORT"):
        assert fix in out.stdout
