"""``llmtap up`` never lies about state: a second or failed ``up`` leaves the running instance's
server.json alone and says who is running; bad data dirs and bad options are one-line errors
with the right usage."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.addons.proc import ROOT, free_port, llmtap_argv, start_llmtap


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        llmtap_argv(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_a_second_up_leaves_the_first_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_llmtap(data)
    try:
        state = (data / "server.json").read_text()
        # same data dir, another port
        same_dir = _run("up", "--data-dir", str(data), "--port", str(free_port()))
        assert same_dir.returncode != 0
        assert f"already running (pid {first.proc.pid}, port {first.port})" in same_dir.stderr
        assert (data / "server.json").read_text() == state
        # another data dir, the same (busy) port
        busy = _run("up", "--data-dir", str(tmp_path / "other"), "--port", str(first.port))
        assert busy.returncode != 0
        assert f"already running (pid {first.proc.pid}, port {first.port})" in busy.stderr
        assert "Traceback" not in busy.stderr and len(busy.stderr.strip().splitlines()) == 1
        assert (data / "server.json").read_text() == state
        status = _run("status", "--data-dir", str(data))
        assert status.returncode == 0, status.stderr
        assert "not running" not in (status.stdout + status.stderr).lower()
    finally:
        assert first.stop() == 0, first.log()
    assert not (data / "server.json").exists()  # the owner cleans up after itself


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory")
def test_unreadable_data_dir_is_one_line(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        out = _run("up", "--data-dir", str(locked), "--port", str(free_port()))
    finally:
        locked.chmod(0o700)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_a_data_dir_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    # sysfs refuses new entries even to root (a locked directory does not stop root).
    out = _run("up", "--data-dir", "/sys/llmtap-test-data", "--port", str(free_port()))
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert "Traceback" not in out.stderr and len(lines) == 1, out.stderr
    assert "/sys/llmtap-test-data" in lines[0]


@pytest.mark.parametrize("command", ["up", "status"])
def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path, command: str) -> None:
    path = tmp_path / "file"
    path.write_text("not a dir")
    out = _run(command, "--data-dir", str(path), "--port", str(free_port()))
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "not a directory" in lines[0], lines


def test_an_unknown_option_shows_the_subcommands_usage() -> None:
    out = _run("up", "--prot", "1")
    assert out.returncode == 2
    assert "usage: llmtap up" in out.stderr
    assert "unrecognized arguments: --prot 1" in out.stderr


def test_each_option_says_its_env_var_and_default() -> None:
    out = _run("up", "--help")
    assert out.returncode == 0
    text = " ".join(out.stdout.split())  # argparse wraps lines
    for env, default in [("LLMTAP_DATA_DIR", "~/.llmtap"), ("LLMTAP_PORT", "20128"),
                         ("LLMTAP_HOST", "127.0.0.1"), ("LLMTAP_PROXY_PORT", "8080"),
                         ("LLMTAP_BRIDGE_PORT", "443"), ("LLMTAP_UPSTREAM_CA", "none")]:  # fmt: skip
        assert f"env {env}, default {default}" in text, env
    combos = " ".join(_run("combos", "add", "--help").stdout.split())
    assert "weighted" in combos and "(default priority)" in combos
    providers = _run("providers", "add", "--help").stdout
    assert "{openai,anthropic,gemini}" in providers


def test_a_bad_upstream_ca_is_said_once(tmp_path: Path) -> None:
    out = _run("up", "--data-dir", str(tmp_path / "d"), "--port", str(free_port()),
               "--upstream-ca", str(tmp_path / "missing.pem"))  # fmt: skip
    assert out.returncode != 0
    assert out.stderr.count("does not exist") == 1, out.stderr
