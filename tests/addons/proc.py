"""Run ``llmtap up`` as a real process for tests: free ports, wait until healthy, stop cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A loopback port free for TCP and for UDP too: mitmproxy's reverse https mode (the
    AgentBridge listener) also binds UDP on its port, so a TCP-only check can hand out a port
    whose UDP side is taken."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no loopback port free for both TCP and UDP")


def llmtap_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "addons.main", *args]


@dataclass
class Llmtap:
    data_dir: Path
    port: int
    proc: subprocess.Popen[str]
    log_path: Path
    proxy_port: int = 0
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.data_dir / "token").read_text().strip()

    def api(self, method: str, path: str, **kw: object) -> httpx.Response:
        headers = {"X-Llmtap-Token": self.token, **dict(kw.pop("headers", {}) or {})}  # type: ignore[call-overload]
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kw)  # type: ignore[arg-type]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def start_llmtap(
    data_dir: Path,
    *extra: str,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    proxy_port: int | None = None,
    wait: bool = True,
    timeout: float = 40,
) -> Llmtap:
    """Start ``llmtap up`` on free loopback ports; by default wait until GET /v1 answers."""
    port = port or free_port()
    proxy_port = proxy_port or free_port()
    full_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LLMTAP_PROXY_PORT": str(proxy_port),
        "LLMTAP_LOG_LEVEL": "INFO",
        **(env or {}),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"llmtap-{port}.log"
    log = log_path.open("w")
    argv: Sequence[str] = llmtap_argv(
        "up", "--data-dir", str(data_dir), "--port", str(port), *extra
    )
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, text=True
    )
    inst = Llmtap(data_dir, port, proc, log_path, proxy_port, full_env)
    if wait:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"llmtap exited early ({proc.returncode}):\n{inst.log()}")
            try:
                if httpx.get(inst.url + "/v1", timeout=1).status_code == 200:
                    return inst
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        inst.stop(signal.SIGKILL)
        raise AssertionError(f"llmtap did not become healthy in {timeout}s:\n{inst.log()}")
    return inst


@contextlib.contextmanager
def llmtap_up(
    data_dir: Path, *extra: str, env: Mapping[str, str] | None = None
) -> Iterator[Llmtap]:
    """``start_llmtap`` for a ``with`` block: on the way out it stops the process, which must
    exit cleanly (its log is the failure message)."""
    app = start_llmtap(data_dir, *extra, env=env)
    try:
        yield app
    finally:
        assert app.stop() == 0, app.log()
