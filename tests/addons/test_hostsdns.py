"""HostsDns with mitmproxy's taddons and a real BridgeControl on temp files and SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy.test import taddons

from addons.hostsdns import HostsDns
from router.bridge.control import BridgeControl
from tests.router.bridge.tempcontrol import temp_control

USER = b"127.0.0.1 localhost\n"


@pytest.fixture
def control(tmp_path: Path) -> Iterator[BridgeControl]:
    with temp_control(tmp_path, USER) as control:
        yield control


async def test_done_removes_the_lines_and_running_writes_none_without_a_listener(
    control: BridgeControl,
) -> None:
    addon = HostsDns(control)
    with taddons.context(addon):
        await control.set_dns("claude-code", True)
        assert b"api.anthropic.com # llmtap" in control.hosts.path.read_bytes()
        await addon.done()
        assert control.hosts.path.read_bytes() == USER
        await addon.running()  # no listener in this process: nothing points at it
        assert control.hosts.path.read_bytes() == USER
