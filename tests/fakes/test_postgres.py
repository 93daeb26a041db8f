"""The throwaway cluster's reaper: a test run killed from outside leaves its server running;
the next run stops it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.postgres import (
    OWNER,
    PREFIX,
    PostgresCluster,
    _free_port,
    _run_as,
    find_bindir,
    reap_stale,
)

BINDIR = find_bindir()
pytestmark = pytest.mark.skipif(BINDIR is None, reason="no PostgreSQL server binaries")


@pytest.fixture
def parent() -> Iterator[Path]:
    # Not under pytest's tmp_path: the server's user (not root) must reach the cluster dir.
    path = Path(tempfile.mkdtemp(prefix="llmtap-reap-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_cluster_whose_test_run_is_gone_is_stopped_and_deleted(parent: Path) -> None:
    assert BINDIR is not None
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid names no process now
    stale = PostgresCluster(
        bindir=BINDIR, root=parent / (PREFIX + "stale"), port=_free_port(), user=_run_as()
    )
    stale.start()
    (stale.root / OWNER).write_text(str(gone.pid))
    live = parent / (PREFIX + "live")
    live.mkdir()
    (live / OWNER).write_text(str(os.getpid()))
    unnamed = parent / (PREFIX + "unnamed")
    unnamed.mkdir()
    try:
        assert _listening(stale.port)
        assert reap_stale(BINDIR, parent) == [stale.root]
        assert not _listening(stale.port)
        assert not stale.root.exists()
        assert live.exists() and unnamed.exists()  # a live run's, and one naming no run
    finally:
        stale.stop()
