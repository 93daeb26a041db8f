"""The hosts-file editor on files in tmp_path; never the machine's /etc/hosts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from router.bridge.hostsfile import HostsFile, HostsFileError, HostsPermissionError
from router.bridge.journal import Journal
from router.errors import BadRequest
from tests.router.bridge.fakeos import FakeOS, run_as_nobody, world_readable_dir

USER = (
    "# user hosts file\n"
    "127.0.0.1\tlocalhost\n"
    "10.0.0.5   build.internal   # my build box  \n"
    "127.0.0.1 api.anthropic.com\n"  # the user's own line, no marker: never ours to remove
    "127.0.0.1 old.example # llmtap note\n"  # mentions llmtap but is not our marker
    "# ünïcödé comment\n"
).encode()


def editor(tmp_path: Path, content: bytes | None = USER, **kw: object) -> HostsFile:
    hosts = tmp_path / "etc" / "hosts"
    hosts.parent.mkdir(exist_ok=True)
    if content is not None:
        hosts.write_bytes(content)
    data = tmp_path / "data"
    return HostsFile(hosts, data, Journal(data), **kw)  # type: ignore[arg-type]


def test_add_then_remove_restores_user_bytes(tmp_path: Path) -> None:
    hf = editor(tmp_path)
    change = hf.add(["API.anthropic.com", "chatgpt.com"])
    assert change.added == [
        "127.0.0.1 api.anthropic.com # llmtap",
        "::1 api.anthropic.com # llmtap",
        "127.0.0.1 chatgpt.com # llmtap",
        "::1 chatgpt.com # llmtap",
    ]
    assert hf.path.read_bytes() == USER + b"".join(line.encode() + b"\n" for line in change.added)
    assert hf.marked_hosts() == {"api.anthropic.com", "chatgpt.com"}

    removed = hf.remove()
    assert sorted(removed.removed) == sorted(change.added)
    assert hf.path.read_bytes() == USER
    assert hf.marked_hosts() == set()


def test_add_is_idempotent_and_batched(tmp_path: Path) -> None:
    hf = editor(tmp_path)
    hf.add(["api.anthropic.com"])
    after_first = hf.path.read_bytes()
    again = hf.add(["api.anthropic.com", "api.anthropic.com"])
    assert not again.changed and again.flush is None
    assert hf.path.read_bytes() == after_first
    more = hf.add(["api.openai.com", "api.anthropic.com"])
    assert more.added == ["127.0.0.1 api.openai.com # llmtap", "::1 api.openai.com # llmtap"]
    assert hf.path.read_bytes().count(b"api.anthropic.com # llmtap") == 2


def test_remove_only_given_hosts(tmp_path: Path) -> None:
    hf = editor(tmp_path)
    hf.add(["api.anthropic.com", "chatgpt.com"])
    hf.remove(["chatgpt.com"])
    assert hf.marked_hosts() == {"api.anthropic.com"}
    text = hf.path.read_text()
    assert "127.0.0.1 api.anthropic.com\n" in text  # the user's own line
    assert not hf.remove(["never-added.example"]).changed


def test_mode_owner_and_newline_style_preserved(tmp_path: Path) -> None:
    crlf = b"127.0.0.1 localhost\r\n::1 localhost"  # CRLF and no final newline
    hf = editor(tmp_path, crlf)
    hf.path.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(hf.path, 12345, 23456)
    before = hf.path.stat()
    hf.add(["api.anthropic.com"])
    after = hf.path.stat()
    assert after.st_ino != before.st_ino  # replaced by rename, not rewritten in place
    assert (after.st_mode, after.st_uid, after.st_gid) == (
        before.st_mode,
        before.st_uid,
        before.st_gid,
    )
    assert hf.path.read_bytes() == (
        crlf + b"\r\n127.0.0.1 api.anthropic.com # llmtap\r\n::1 api.anthropic.com # llmtap\r\n"
    )
    assert not [p for p in hf.path.parent.iterdir() if p.name != "hosts"]  # no temp left


def test_original_copied_once_and_journaled(tmp_path: Path) -> None:
    hf = editor(tmp_path)
    hf.add(["api.anthropic.com"])
    hf.add(["chatgpt.com"])
    hf.remove(["api.anthropic.com"])
    assert hf.backup_path.read_bytes() == USER
    entry = hf.journal.read().hosts[str(hf.path)]
    assert entry.backup == str(hf.backup_path)
    assert entry.added == ["127.0.0.1 chatgpt.com # llmtap", "::1 chatgpt.com # llmtap"]
    assert [(c.action, len(c.lines)) for c in entry.history] == [
        ("add", 2),
        ("add", 2),
        ("remove", 2),
    ]


def test_invalid_hosts_are_rejected_before_writing(tmp_path: Path) -> None:
    hf = editor(tmp_path)
    for bad in ["a b.com", "x.com # evil", "evil.com\n0.0.0.0 bank.com", "", "1.2.3.4:443"]:
        with pytest.raises(BadRequest):
            hf.add([bad])
    assert hf.path.read_bytes() == USER
    assert not hf.backup_path.exists()


def test_missing_file_is_created(tmp_path: Path) -> None:
    hf = editor(tmp_path, None)
    hf.add(["api.anthropic.com"])
    assert (
        hf.path.read_text()
        == "127.0.0.1 api.anthropic.com # llmtap\n::1 api.anthropic.com # llmtap\n"
    )
    assert hf.path.stat().st_mode & 0o777 == 0o644


def test_permission_denied_names_the_sudo_command() -> None:
    # A real unprivileged process: as root, chmod would deny nothing.
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to uid nobody")
    with world_readable_dir() as root:
        (root / "hosts").write_bytes(USER)
        (root / "hosts").chmod(0o644)
        data = root / "data"
        data.mkdir(mode=0o777)
        data.chmod(0o777)
        hf = HostsFile(root / "hosts", data, Journal(data))
        out = run_as_nobody(
            lambda: repr(hf.add(["api.anthropic.com"], command="llmtap dns enable claude-code"))
        )
        assert out == (
            f"HostsPermissionError: cannot write {root / 'hosts'} (permission denied); "
            "run: sudo llmtap dns enable claude-code"
        )
        assert (root / "hosts").read_bytes() == USER
        assert run_as_nobody(lambda: str(hf.is_writable())) == "False"
        assert hf.is_writable()  # root can


def test_windows_hint_and_error_type(tmp_path: Path) -> None:
    hf = editor(tmp_path, platform="win32")
    err = hf._permission_error("write", "llmtap dns enable codex")
    assert isinstance(err, HostsPermissionError) and err.status == 403
    assert str(err).endswith("run from an Administrator terminal: llmtap dns enable codex")


def test_parent_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notadir").write_text("")
    data = tmp_path / "data"
    hf = HostsFile(tmp_path / "notadir" / "hosts", data, Journal(data))
    with pytest.raises(HostsFileError, match=r"cannot read .*notadir/hosts: Not a directory"):
        hf.add(["api.anthropic.com"])


@pytest.mark.parametrize(
    ("platform", "tools", "expected"),
    [
        ("linux", ("resolvectl",), [["resolvectl", "flush-caches"]]),
        (
            "darwin",
            ("dscacheutil", "killall"),
            [["dscacheutil", "-flushcache"], ["killall", "-HUP", "mDNSResponder"]],
        ),
        ("win32", ("ipconfig",), [["ipconfig", "/flushdns"]]),
    ],
)
def test_resolver_flush(
    tmp_path: Path, platform: str, tools: tuple[str, ...], expected: list[list[str]]
) -> None:
    fake = FakeOS(tmp_path / "os", tools)
    hf = editor(tmp_path, runner=fake.runner(), platform=platform)
    change = hf.add(["api.anthropic.com"])
    assert change.flush is not None and change.flush.flushed
    assert fake.calls() == expected
    fake.clear_calls()
    assert hf.remove().flush.flushed  # type: ignore[union-attr]
    assert fake.calls() == expected


def test_no_flush_tool_is_reported_not_raised(tmp_path: Path) -> None:
    fake = FakeOS(tmp_path / "os", ())
    hf = editor(tmp_path, runner=fake.runner())
    flush = hf.add(["api.anthropic.com"]).flush
    assert flush is not None and not flush.flushed and "no resolver cache command" in flush.detail
    failing = FakeOS(tmp_path / "os2", ("resolvectl",))
    failing.state = {
        "fail": {"resolvectl": {"rc": 1, "stderr": "Failed to flush caches: Access denied"}}
    }
    hf2 = editor(tmp_path, runner=failing.runner())
    flush2 = hf2.add(["chatgpt.com"]).flush
    assert flush2 is not None and not flush2.flushed and "Access denied" in flush2.detail


@pytest.mark.parametrize(
    "content",
    [
        b"127.0.0.1 localhost\n10.0.0.5 mine",  # no newline at the end
        b"127.0.0.1 localhost\r\n10.0.0.5 mine",  # Windows, no newline at the end
        b"127.0.0.1 localhost\r\n",
        b"",
    ],
)
def test_the_newline_given_to_a_last_line_is_taken_back(tmp_path: Path, content: bytes) -> None:
    hf = editor(tmp_path, content)
    hf.add(["api.anthropic.com"])
    hf.add(["chatgpt.com"])
    text = hf.path.read_bytes()
    assert text.startswith(content) and text.count(b"# llmtap") == 4
    hf.remove(["chatgpt.com"])
    assert hf.marked_hosts() == {"api.anthropic.com"}
    hf.remove(["api.anthropic.com"])
    assert hf.path.read_bytes() == content
    assert hf.journal.read().hosts[str(hf.path)].newline_added is None


def _unshare_mount_reason() -> str | None:
    """Why a private mount namespace cannot be made here (None: it can)."""
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return "unshare(1) is not installed"
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "true"], capture_output=True, timeout=30
    )
    if probe.returncode != 0:
        return f"unshare -m is not permitted here: {probe.stderr.decode(errors='replace')}"
    return None


def test_bind_mounted_hosts_in_a_read_only_dir_is_rewritten_in_place(tmp_path: Path) -> None:
    """Kubernetes with readOnlyRootFilesystem: /etc is read-only and /etc/hosts a writable bind
    mount. No temp file can be made next to it and a rename over it fails; the editor writes in
    place, and removing restores the user's bytes. Run in a private mount namespace."""
    import subprocess
    import sys

    reason = _unshare_mount_reason()
    if reason:
        pytest.skip(reason)
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "hosts").write_bytes(b"")  # the mount point
    source = tmp_path / "hosts.source"
    source.write_bytes(USER)
    script = f"""
import sys
from pathlib import Path
from router.bridge.hostsfile import HostsFile, is_mount_point
from router.bridge.journal import Journal
hosts = Path({str(etc / "hosts")!r})
assert is_mount_point(hosts)
data = Path({str(tmp_path / "data")!r})
hf = HostsFile(hosts, data, Journal(data))
hf.add(["api.anthropic.com"])
assert hf.marked_hosts() == {{"api.anthropic.com"}}, hosts.read_bytes()
hf.remove()
print("in-namespace ok")
"""
    shell = (
        f"mount --bind {etc} {etc} && mount -o remount,bind,ro {etc} && "
        f'mount --bind {source} {etc / "hosts"} && {sys.executable} -c "$SCRIPT"'
    )
    run = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", shell],
        env={**os.environ, "SCRIPT": script, "PYTHONPATH": str(Path.cwd())},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and "in-namespace ok" in run.stdout, run.stdout + run.stderr
    assert source.read_bytes() == USER  # the bound file got the lines and lost them again
    assert sorted(p.name for p in etc.iterdir()) == ["hosts"]  # no temp file was ever left


def test_is_mount_point_reads_mountinfo_escapes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from router.bridge import hostsfile

    target = tmp_path / "my etc" / "hosts"
    target.parent.mkdir()
    target.write_text("")
    info = tmp_path / "mountinfo"
    escaped = str(target).replace(" ", "\\040")
    info.write_text(f"36 35 98:0 /hosts {escaped} rw,noatime master:1 - ext3 /dev/root rw\n")
    monkeypatch.setattr(hostsfile, "MOUNTINFO", info)
    assert hostsfile.is_mount_point(target)
    assert not hostsfile.is_mount_point(target.parent)
    monkeypatch.setattr(hostsfile, "MOUNTINFO", tmp_path / "absent")
    assert not hostsfile.is_mount_point(target)
