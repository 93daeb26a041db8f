"""``llmtap repair`` as a real subprocess on a temp hosts file: a table like the other commands
(``--json`` for scripts), advice that fits the user it runs as, and a journal that records
only what was done."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from router.bridge.hostsfile import HostsFile
from router.bridge.journal import Journal
from tests.addons.bridgeenv import ORIGINAL, BridgeEnv, bridge_env


@pytest.fixture
def env(tmp_path: Path) -> BridgeEnv:
    env = bridge_env(tmp_path)
    HostsFile(env.hosts, env.data_dir, Journal(env.data_dir)).add(["chatgpt.com"])
    assert b"chatgpt.com # llmtap" in env.hosts.read_bytes()
    return env


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """``chattr +i``: a file not even root may replace (what a locked-down /etc/hosts is)."""
    if shutil.which("chattr") is None:
        pytest.skip("no chattr")
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("this file system has no immutable attribute")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def _history(env: BridgeEnv) -> list[dict[str, object]]:
    data = json.loads((env.data_dir / Journal.FILENAME).read_text())
    history: list[dict[str, object]] = data["hosts"][str(env.hosts)]["history"]
    return history


def test_repair_prints_a_table_and_json_on_request(env: BridgeEnv) -> None:
    res = env.cli("repair")
    assert res.returncode == 0, res.stdout + res.stderr
    header, *rows = res.stdout.strip().splitlines()
    assert header.split() == ["ACTION", "RESULT"]
    text = "\n".join(rows)
    assert "hosts file" in text and "removed 2 lines" in text
    assert "system proxy" in text and "not set" in text
    assert env.hosts.read_bytes() == ORIGINAL
    again = json.loads(env.cli("repair", "--json").stdout)
    assert again["hostsLinesRemoved"] == [] and again["errors"] == []


@pytest.mark.skipif(os.geteuid() != 0, reason="the advice for root")
def test_repair_as_root_gives_root_advice_and_journals_only_what_it_did(env: BridgeEnv) -> None:
    before = _history(env)
    with immutable(env.hosts):
        res = env.cli("repair")
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "sudo" not in out, out
    assert "read-only" in out or "immutable" in out, out
    assert b"chatgpt.com # llmtap" in env.hosts.read_bytes()  # nothing changed...
    assert _history(env) == before  # ...and the journal does not say otherwise
    res = env.cli("repair")  # once the file can be written, repair does it
    assert res.returncode == 0, res.stdout + res.stderr
    assert env.hosts.read_bytes() == ORIGINAL
    assert [h["action"] for h in _history(env)] == ["add", "remove"]
