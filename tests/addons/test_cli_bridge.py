"""``llmtap ca|bridge|agents|doctor|repair`` as real subprocesses: against the files and the
store when no server runs, and through a running ``llmtap up``'s API when one does."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from tests.addons.bridgeenv import ORIGINAL, BridgeEnv, bridge_env


def ok(env: BridgeEnv, *argv: str) -> str:
    res = env.cli(*argv)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def ok_json(env: BridgeEnv, *argv: str) -> object:
    return json.loads(ok(env, *argv, "--json"))


def test_offline_commands_work_on_the_files_and_the_store(tmp_path: Path) -> None:
    env = bridge_env(tmp_path)
    listing = ok(env, "agents", "list")
    for agent in ("claude-code", "codex", "zed", "kiro", "cursor", "trae"):
        assert agent in listing
    assert "capture only:" in listing  # the capture-only ones say why
    rows = ok_json(env, "agents", "list")
    assert isinstance(rows, list) and len(rows) == 9

    path = ok(env, "ca", "path").strip()
    assert Path(path).read_text().startswith("-----BEGIN CERTIFICATE-----")
    shown = ok_json(env, "ca", "show")
    assert isinstance(shown, dict) and shown["trusted"] is False and shown["path"] == path

    trusted = ok_json(env, "ca", "trust")
    assert isinstance(trusted, dict) and trusted["status"] == "installed"
    assert (env.anchors / "llmtap-ca.crt").read_text() == Path(path).read_text()
    assert "trusted      yes" in ok(env, "ca", "show")
    untrusted = ok_json(env, "ca", "untrust")
    assert isinstance(untrusted, dict) and untrusted["status"] == "removed"
    assert not (env.anchors / "llmtap-ca.crt").exists()

    res = env.cli("agents", "enable", "codex")
    assert res.returncode != 0 and "not running" in res.stderr
    assert env.hosts.read_bytes() == ORIGINAL

    res = env.cli("agents", "map", "claude-code", "*", "oa/gpt-4.1-mini")
    assert res.returncode == 2 and "mappings.0.target" in res.stderr
    ok(env, "providers", "add", "openai", "http://127.0.0.1:9/v1", "--name", "oa")
    out = ok(env, "agents", "map", "claude-code", "*", "oa/gpt-4.1-mini", "--effort", "extra")
    assert "oa/gpt-4.1-mini" in out and "xhigh" in out
    ok(env, "agents", "map", "claude-code", "claude-opus-4", "oa/o3")
    rows = ok_json(env, "agents", "mappings", "claude-code")
    assert isinstance(rows, list)
    assert [(r["source_model"], r["target_model"]) for r in rows] == [
        ("*", "oa/gpt-4.1-mini"),
        ("claude-opus-4", "oa/o3"),
    ]
    ok(env, "agents", "unmap", "claude-code", "*")
    rows = ok_json(env, "agents", "mappings", "claude-code")
    assert isinstance(rows, list) and [r["source_model"] for r in rows] == ["claude-opus-4"]
    res = env.cli("agents", "map", "zed", "*", "oa/o3")
    assert res.returncode == 2 and "capture-only" in res.stderr

    res = env.cli("doctor")
    assert res.returncode == 1
    assert "server-running" in res.stdout and "fail" in res.stdout
    assert "fixes:" in res.stdout and "llmtap up" in res.stdout

    status = ok_json(env, "bridge", "status")
    assert isinstance(status, dict) and status["running"] is False
    res = env.cli("bridge", "start")
    assert res.returncode != 0 and "not running" in res.stderr


def test_online_commands_go_through_the_running_server(tmp_path: Path) -> None:
    env = bridge_env(tmp_path)
    app = env.start()
    try:
        out = ok(env, "agents", "enable", "claude-code")
        assert "+ 127.0.0.1 api.anthropic.com # llmtap" in out
        assert b"::1 api.anthropic.com # llmtap" in env.hosts.read_bytes()
        listing = ok(env, "agents", "list")
        claude = next(line for line in listing.splitlines() if line.startswith("claude-code"))
        assert " on " in f" {claude} "

        before = ok_json(env, "ca", "show")
        regen = ok_json(env, "ca", "regenerate")
        assert isinstance(before, dict) and isinstance(regen, dict)
        assert regen["previousFingerprint"] == before["fingerprint"]
        assert regen["fingerprint"] != before["fingerprint"] and regen["reloaded"] is True

        status = ok_json(env, "bridge", "status")
        assert isinstance(status, dict)
        assert status["available"] is True  # the :443 listener is part of this build

        res = env.cli("doctor")
        assert "dns-configured (claude-code)" in res.stdout and "cert-trusted" in res.stdout

        out = ok(env, "agents", "disable", "claude-code")
        assert "- 127.0.0.1 api.anthropic.com # llmtap" in out
        assert env.hosts.read_bytes() == ORIGINAL
    finally:
        assert app.stop() == 0, app.log()


HANGING_RESOLVECTL = """#!{python} -IS
import os, sys, time
open({pidfile!r}, "w").write(str(os.getpid()))
time.sleep(60)
"""


def test_kill_9_during_dns_enable_then_repair_restores_the_file_exactly(tmp_path: Path) -> None:
    env = bridge_env(tmp_path)
    # The resolver flush comes after the write: a flush that hangs holds the enable request
    # open with the lines already in the file, which is where a crash hurts.
    pidfile = tmp_path / "resolvectl.pid"
    tool = env.fake.bin / "resolvectl"
    tool.write_text(HANGING_RESOLVECTL.format(python=sys.executable, pidfile=str(pidfile)))
    app = env.start()
    try:
        import httpx

        # The listener first (enabling DNS would start it): the 0.5 s request below must spend
        # its time on the hosts-file write and the hanging flush, not on a loaded machine
        # starting mitmproxy listeners.
        started = app.api("POST", "/api/tools/agent-bridge/server", json={"action": "start"})
        assert started.status_code == 200, started.text
        with httpx.Client(timeout=0.5) as client:
            try:
                client.post(
                    f"{app.url}/api/tools/agent-bridge/agents/codex/dns",
                    json={"enabled": True},
                    headers={"X-Llmtap-Token": app.token},
                )
            except httpx.TimeoutException:
                pass
        deadline = time.monotonic() + 20
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pidfile.exists(), app.log()
        assert b"chatgpt.com # llmtap" in env.hosts.read_bytes()
        app.stop(signal.SIGKILL)
    finally:
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
        app.stop(signal.SIGKILL)
    assert b"# llmtap" in env.hosts.read_bytes(), "a crash leaves the lines behind"

    tool.unlink()  # repair flushes the resolver too; a quick fake this time
    env.fake.add_tool("resolvectl")
    res = env.cli("repair", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    report = json.loads(res.stdout)
    assert len(report["hostsLinesRemoved"]) == 4 and report["resolverFlushed"] is True
    assert env.hosts.read_bytes() == ORIGINAL
    rows = ok_json(env, "agents", "list")
    assert isinstance(rows, list)
    assert not any(r["dns_enabled"] for r in rows), "repair clears the flags too"
    assert json.loads(env.cli("repair", "--json").stdout)["hostsLinesRemoved"] == []
