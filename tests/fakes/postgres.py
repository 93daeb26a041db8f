"""A throwaway PostgreSQL cluster for one test run, from the OS's PostgreSQL binaries.

``initdb`` in a fresh temp dir, ``postgres`` on its own free port on 127.0.0.1 (and a unix
socket inside that dir), stopped and deleted at the end. PostgreSQL refuses to run as root,
so under root (tests and CI) the cluster runs as the ``postgres`` user (Debian's package
creates it) or ``nobody``, through ``runuser``, in a dir chowned to that user. Tuned for tests:
no fsync, trust auth on loopback only, C collation.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def find_bindir() -> Path | None:
    """The directory holding initdb/pg_ctl: $LLMTAP_PG_BINDIR, Debian's newest
    /usr/lib/postgresql/N/bin, else whatever PATH has."""
    explicit = os.environ.get("LLMTAP_PG_BINDIR")
    if explicit:
        return Path(explicit) if (Path(explicit) / "initdb").exists() else None
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if versions:
        return Path(versions[-1]).parent
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as() -> str | None:
    """The unprivileged user to run the server as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")


@dataclass
class PostgresCluster:
    bindir: Path
    root: Path
    port: int
    user: str | None
    superuser: str = "llmtap"

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def _cmd(self, *argv: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *argv] if self.user else list(argv)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        subprocess.run(
            self._cmd(
                str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", self.superuser,
                "--auth=trust", "--no-sync", "--locale=C", "--encoding=UTF8",
            ),
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                f"-c unix_socket_directories={self.root}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=300",
                "-c shared_buffers=32MB",
            ]
        )
        subprocess.run(
            self._cmd(
                str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l",
                str(self.root / "server.log"), "-o", options, "-w", "-t", "60", "start",
            ),
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip

    def restart(self) -> None:
        """Stop (dropping every connection) and start again on the same port."""
        subprocess.run(
            self._cmd(
                str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w",
                "-t", "60", "-l", str(self.root / "server.log"), "restart",
            ),
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(
                self._cmd(
                    str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate",
                    "-w", "stop",
                ),
                capture_output=True, timeout=60,
            )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")
        except OSError:
            return ""

    def create_database(self, name: str | None = None) -> str:
        """A fresh empty database; returns its URL."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


PREFIX = "llmtap-pg-"
OWNER = "owner.pid"  # in a cluster's root: the pid of the test run that made it


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def reap_stale(bindir: Path, parent: Path | None = None) -> list[Path]:
    """Stop and delete the clusters in ``parent`` (the temp dir) whose test run is gone: a run
    killed from outside (SIGKILL, a timeout) cannot clean up after itself, and its server would
    run on. A cluster whose run is alive, or that names none, is left alone. Returns the roots
    reaped."""
    reaped = []
    for root in sorted(Path(parent or tempfile.gettempdir()).glob(PREFIX + "*")):
        try:
            pid = int((root / OWNER).read_text())
        except (OSError, ValueError):
            continue
        if _alive(pid):
            continue
        try:
            owner = pwd.getpwuid(root.stat().st_uid).pw_name
        except (KeyError, OSError):
            owner = None
        user = owner if owner and os.geteuid() == 0 and owner != "root" else None
        PostgresCluster(bindir=bindir, root=root, port=0, user=user).stop()
        reaped.append(root)
    return reaped


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[PostgresCluster]:
    bindir = find_bindir()
    if bindir is None:
        raise FileNotFoundError("no PostgreSQL server binaries (initdb) found")
    reap_stale(bindir)
    cluster = PostgresCluster(
        bindir=bindir,
        root=Path(tempfile.mkdtemp(prefix=PREFIX)),
        port=_free_port(),
        user=_run_as(),
    )
    (cluster.root / OWNER).write_text(str(os.getpid()))
    try:
        cluster.start()
    except subprocess.CalledProcessError as exc:
        out = (exc.stdout or b"").decode(errors="replace") + (exc.stderr or b"").decode(
            errors="replace"
        )
        cluster.stop()
        raise RuntimeError(f"could not start PostgreSQL: {out}\n{cluster.log()}") from exc
    try:
        yield cluster
    finally:
        cluster.stop()
