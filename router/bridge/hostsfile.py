"""The hosts-file editor: adds and removes llmtap's marked loopback lines (never a user's line),
atomically, with a backup of the original, an undo journal and a resolver-cache flush."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from router import netaddr
from router.bridge.journal import HostsEntry, Journal
from router.bridge.runner import CommandRunner
from router.errors import BadRequest, Forbidden, LlmtapError

MARKER = "# llmtap"
LOOPBACK = ("127.0.0.1", "::1")
BACKUP_NAME = "hosts.original"
_HOST_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_-]{1,63})*$")
_MARKER_TOKENS = [b"#", b"llmtap"]


class HostsPermissionError(Forbidden):
    """No privilege to change the hosts file; the message names the command to run instead."""

    code = "hosts_file_permission"


class HostsFileError(LlmtapError):
    code = "hosts_file_error"


@dataclass(slots=True)
class FlushResult:
    flushed: bool
    commands: list[str] = field(default_factory=list)
    detail: str = ""


@dataclass(slots=True)
class HostsChange:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    flush: FlushResult | None = None

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


def valid_host(host: str) -> str:
    """A host name safe to put in the hosts file; anything else (spaces, '#', newlines, IPs
    with ports) is a BadRequest, so a request can never inject a line."""
    h = netaddr.normalize_host(host)
    if not _HOST_RE.match(h):
        raise BadRequest(f"'{host}' is not a valid host name")
    return h


def marked_line(address: str, host: str) -> str:
    return f"{address} {host} {MARKER}"


class HostsFile:
    """One hosts file. ``runner`` flushes the resolver after a change (None: no flush)."""

    def __init__(
        self,
        path: Path,
        data_dir: Path,
        journal: Journal,
        runner: CommandRunner | None = None,
        *,
        platform: str = sys.platform,
    ) -> None:
        self.path = path
        self.data_dir = data_dir
        self.journal = journal
        self.runner = runner
        self.platform = platform

    @property
    def backup_path(self) -> Path:
        return self.data_dir / BACKUP_NAME

    def marked_hosts(self) -> set[str]:
        """Hosts that have an llmtap line, i.e. are currently redirected to loopback."""
        return {host for _, host in (_parse_marked(line) for line in self._lines()) if host}

    def is_writable(self) -> bool:
        """For diagnose: whether add/remove would succeed without more privilege."""
        target = self.path if self.path.exists() else self.path.parent
        return os.access(target, os.W_OK) and os.access(self.path.parent, os.W_OK | os.X_OK)

    def add(self, hosts: Iterable[str], *, command: str = "llmtap dns enable") -> HostsChange:
        """Add both loopback lines for every host in one write; lines already there are kept."""
        wanted = sorted({valid_host(h) for h in hosts})
        lines = self._lines(command)
        present = {line.rstrip(b"\r\n").strip() for line in lines}
        new = [
            marked_line(addr, host)
            for host in wanted
            for addr in LOOPBACK
            if marked_line(addr, host).encode() not in present
        ]
        if not new:
            return HostsChange()
        nl = _newline(lines, self.platform)
        newline_added = None
        if lines and not lines[-1].endswith((b"\n", b"\r")):
            lines[-1] += nl
            newline_added = nl.decode("ascii")
        lines.extend(line.encode() + nl for line in new)
        self._commit(lines, command, added=new, removed=[], newline_added=newline_added)
        return HostsChange(added=new, flush=self.flush_resolver())

    def remove(
        self, hosts: Iterable[str] | None = None, *, command: str = "llmtap repair"
    ) -> HostsChange:
        """Remove llmtap's lines for ``hosts`` (all of them when None). Works with the server
        stopped, which is what ``repair`` relies on."""
        only = None if hosts is None else {valid_host(h) for h in hosts}
        kept: list[bytes] = []
        removed: list[str] = []
        for line in self._lines(command):
            _, host = _parse_marked(line)
            if host and (only is None or host in only):
                removed.append(line.rstrip(b"\r\n").decode("utf-8", "replace").strip())
            else:
                kept.append(line)
        if not removed:
            return HostsChange()
        if not any(_parse_marked(line)[1] for line in kept):
            # The last marked line goes: give back the newline add() put on the user's line.
            added_nl = self.journal.read().hosts.get(str(self.path), HostsEntry()).newline_added
            if added_nl and kept and kept[-1].endswith(added_nl.encode("ascii")):
                kept[-1] = kept[-1][: -len(added_nl)]
        self._commit(kept, command, added=[], removed=removed)
        return HostsChange(removed=removed, flush=self.flush_resolver())

    def flush_resolver(self) -> FlushResult:
        """Flush the OS resolver cache so the change takes effect now. Never raises: the hosts
        file is already right, a failed flush only delays it (the user restarts the IDE)."""
        if self.runner is None:
            return FlushResult(False, detail="no command runner")
        if self.platform == "darwin":
            plan = [["dscacheutil", "-flushcache"], ["killall", "-HUP", "mDNSResponder"]]
        elif self.platform == "win32":
            plan = [["ipconfig", "/flushdns"]]
        else:
            linux = (["resolvectl", "flush-caches"], ["systemd-resolve", "--flush-caches"])
            plan = [argv for argv in linux if self.runner.which(argv[0])][:1]
        if not plan or any(self.runner.which(argv[0]) is None for argv in plan):
            return FlushResult(False, detail="no resolver cache command on this system")
        ran: list[str] = []
        for argv in plan:
            res = self.runner.run(argv, check=False)
            ran.append(" ".join(argv))
            if res.returncode != 0:
                detail = (res.stderr or res.stdout).strip().splitlines()[:1]
                return FlushResult(False, ran, f"`{ran[-1]}` failed: {''.join(detail)}"[:300])
        return FlushResult(True, ran)

    # -- internals ---------------------------------------------------------------------------

    def _lines(self, command: str = "llmtap repair") -> list[bytes]:
        try:
            return self.path.read_bytes().splitlines(keepends=True)
        except FileNotFoundError:
            return []
        except PermissionError as exc:
            raise self._permission_error("read", command) from exc
        except OSError as exc:
            raise HostsFileError(f"cannot read {self.path}: {exc.strerror}") from exc

    def _permission_error(self, verb: str, command: str) -> HostsPermissionError:
        if self.platform == "win32":
            fix = f"run from an Administrator terminal: {command}"
        elif os.geteuid() == 0:
            # sudo would change nothing: root itself is refused.
            fix = (
                "even root may not change it: the file is immutable (`lsattr`, `chattr -i`) "
                "or on a read-only mount; fix that, then run: " + command
            )
        else:
            fix = f"run: sudo {command}"
        return HostsPermissionError(f"cannot {verb} {self.path} (permission denied); {fix}")

    def _commit(
        self,
        lines: list[bytes],
        command: str,
        *,
        added: list[str],
        removed: list[str],
        newline_added: str | None = None,
    ) -> None:
        try:
            st: os.stat_result | None = self.path.stat()
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise HostsFileError(f"cannot use {self.path}: {exc.strerror}") from exc
        content = b"".join(lines)
        # A hosts file that is itself a mount point (Docker and Kubernetes bind-mount
        # /etc/hosts, often with /etc read-only) can only be rewritten in place: a temp file
        # next to it may not be creatable and a rename over a mount point fails with EBUSY.
        tmp = None if is_mount_point(self.path) else self._write_temp(content, st, command)
        key = str(self.path)
        before = self.journal.read().hosts.get(key)
        try:
            self._backup_once(st)
            with self.journal.edit() as data:
                entry = data.hosts.setdefault(str(self.path), HostsEntry())
                entry.added = sorted((set(entry.added) | set(added)) - set(removed))
                if newline_added:
                    entry.newline_added = newline_added
                elif not entry.added:
                    entry.newline_added = None
                if self.backup_path.exists():
                    entry.backup = str(self.backup_path)
            try:
                if tmp is None:
                    self._write_in_place(content, command)
                else:
                    self._replace(tmp, content, command)
            except BaseException:
                # Not done: the journal goes back to what is still true of the file.
                with self.journal.edit() as data:
                    if before is None:
                        data.hosts.pop(key, None)
                    else:
                        data.hosts[key] = before
                raise
            # The history says what was done, so it is written once the file was changed
            # (what the undo needs, above, is written before).
            with self.journal.edit() as data:
                data.hosts[key].record("add" if added else "remove", added or removed)
        finally:
            if tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def _write_temp(self, data: bytes, st: os.stat_result | None, command: str) -> str:
        # The temp file goes next to the target so the rename is atomic; creating it is also
        # the honest permission probe (os.access lies for root on read-only mounts).
        try:
            fd, tmp = tempfile.mkstemp(prefix=".hosts.llmtap-", dir=self.path.parent)
        except PermissionError as exc:
            raise self._permission_error("write", command) from exc
        except OSError as exc:
            if exc.errno == errno.EROFS:
                raise HostsFileError(
                    f"cannot write {self.path}: the file system is read-only"
                ) from exc
            raise HostsFileError(f"cannot write {self.path}: {exc.strerror}") from exc
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, st.st_mode & 0o7777 if st else 0o644)
            if st is not None and hasattr(os, "chown"):
                # Only root can give the file away; as the owner we already match.
                with contextlib.suppress(PermissionError):
                    os.chown(tmp, st.st_uid, st.st_gid)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return tmp

    def _backup_once(self, st: os.stat_result | None) -> None:
        if st is None or self.backup_path.exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.path, self.backup_path)

    def _replace(self, tmp: str, data: bytes, command: str) -> None:
        try:
            os.replace(tmp, self.path)
        except PermissionError as exc:
            raise self._permission_error("write", command) from exc
        except OSError as exc:
            # Docker bind-mounts /etc/hosts: a rename over a mount point fails with EBUSY, so
            # the only way is rewriting in place (not atomic, but the content is complete).
            if exc.errno not in (errno.EBUSY, errno.EXDEV):
                raise HostsFileError(f"cannot write {self.path}: {exc.strerror}") from exc
            self._write_in_place(data, command)

    def _write_in_place(self, data: bytes, command: str) -> None:
        """Not atomic, but the content is complete: the only way into a bind-mounted file."""
        try:
            with open(self.path, "r+b") as f:
                f.write(data)
                f.truncate()
                f.flush()
                os.fsync(f.fileno())
        except PermissionError as exc:
            raise self._permission_error("write", command) from exc
        except OSError as exc:
            raise HostsFileError(f"cannot write {self.path}: {exc.strerror}") from exc


MOUNTINFO = Path("/proc/self/mountinfo")


def is_mount_point(path: Path) -> bool:
    """Whether ``path`` itself is a mount point, bind-mounted files included (Linux's
    mountinfo lists them; ``os.path.ismount`` misses a file bound from the same file system)."""
    try:
        text = MOUNTINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False  # not Linux, or no /proc: the rename path handles EBUSY anyway
    target = os.path.realpath(path)
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) > 4 and _unescape_mount(fields[4]) == target:
            return True
    return False


def _unescape_mount(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _parse_marked(line: bytes) -> tuple[str | None, str | None]:
    fields = line.split()
    if len(fields) != 4 or fields[2:] != _MARKER_TOKENS:
        return None, None
    addr = fields[0].decode("ascii", "replace")
    if addr not in LOOPBACK:
        return None, None
    return addr, fields[1].decode("ascii", "replace").lower()


def _newline(lines: list[bytes], platform: str) -> bytes:
    if any(line.endswith(b"\r\n") for line in lines):
        return b"\r\n"
    if not lines and platform == "win32":
        return b"\r\n"
    return b"\n"
