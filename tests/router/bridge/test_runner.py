"""CommandRunner: its own PATH, argument lists, sanitized CommandError."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from router.bridge.runner import NOT_FOUND, TIMED_OUT, CommandError, CommandRunner


def tool(bin_dir: Path, name: str, body: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / name
    exe.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    exe.chmod(0o755)


def test_runs_argv_without_a_shell(tmp_path: Path) -> None:
    tool(tmp_path / "bin", "echoargs", "import json; print(json.dumps(sys.argv[1:]))")
    runner = CommandRunner(path=str(tmp_path / "bin"))
    arg = "a b; rm -rf / $HOME `id` 'q'"
    done = runner.run(["echoargs", arg, "*"])
    assert done.returncode == 0
    assert done.stdout.strip() == '["a b; rm -rf / $HOME `id` \'q\'", "*"]'


def test_which_sees_only_its_own_path(tmp_path: Path) -> None:
    tool(tmp_path / "bin", "mine", "pass")
    runner = CommandRunner(path=str(tmp_path / "bin"))
    assert runner.which("mine") == str(tmp_path / "bin" / "mine")
    assert runner.which("sh") is None  # exists on the machine, not on this PATH


def test_input_and_env_reach_the_child(tmp_path: Path) -> None:
    tool(tmp_path / "bin", "cat2", "import os; print(sys.stdin.read().upper(), os.environ['X'])")
    runner = CommandRunner(path=str(tmp_path / "bin"), env={"X": "from-env"})
    assert runner.run(["cat2"], input="hello").stdout.split() == ["HELLO", "from-env"]
    assert runner.env["PATH"] == str(tmp_path / "bin")


def test_failure_is_sanitized(tmp_path: Path) -> None:
    home = str(Path.home())
    tool(
        tmp_path / "bin",
        "failing",
        f"sys.stderr.write('bad thing at {home}/private/x\\nline2\\nline3\\nline4\\n'); sys.exit(3)",
    )
    runner = CommandRunner(path=str(tmp_path / "bin"))
    with pytest.raises(CommandError) as info:
        runner.run(["failing", "--flag"])
    msg = str(info.value)
    assert info.value.returncode == 3
    assert msg.startswith("`failing` exited with 3: bad thing at ~/private/x")
    assert "line3" in msg and "line4" not in msg
    assert str(tmp_path) not in msg  # the executable's full path is not shown
    done = runner.run(["failing"], check=False)
    assert done.returncode == 3 and "line4" in done.stderr


def test_not_found(tmp_path: Path) -> None:
    runner = CommandRunner(path=str(tmp_path))
    with pytest.raises(CommandError) as info:
        runner.run(["no-such-tool"])
    assert info.value.returncode == NOT_FOUND
    assert "`no-such-tool` was not found" in str(info.value)
    assert runner.run(["no-such-tool"], check=False).returncode == NOT_FOUND


def test_timeout(tmp_path: Path) -> None:
    tool(tmp_path / "bin", "hang", "time.sleep(60)")
    runner = CommandRunner(path=str(tmp_path / "bin"))
    with pytest.raises(CommandError) as info:
        runner.run(["hang"], timeout=0.3)
    assert info.value.returncode == TIMED_OUT
    assert info.value.status == 500
