"""A stop signal ends ``llmtap up`` even while a call hangs: calls in flight get
SHUTDOWN_GRACE_S to finish, then are cancelled (aiohttp's own default waited 60 s, longer than
a service manager's stop timeout and than a test's patience)."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import pytest

from addons.webapp import SHUTDOWN_GRACE_S
from tests.addons.proc import start_llmtap


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stalled_call_does_not_hold_the_process_after_a_stop(tmp_path: Path, sig: int) -> None:
    app = start_llmtap(tmp_path / "data")
    try:
        # A client that promises a body and never sends it: its handler waits for ever.
        stalled = socket.create_connection(("127.0.0.1", app.port), timeout=10)
        stalled.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        assert app.api("GET", "/api/settings").status_code == 200  # the process is serving
        app.proc.send_signal(sig)
        # Bounded: the grace plus start-up of the stop, far below aiohttp's 60 s default.
        try:
            code = app.proc.wait(SHUTDOWN_GRACE_S + 20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"llmtap still running {SHUTDOWN_GRACE_S + 20:g}s after {sig!r}")
        assert code == 0, app.log()
        stalled.close()
    finally:
        app.stop(signal.SIGKILL)
