"""The processes under test: fake upstream, direct, pass-through floor, llmtap, LiteLLM.

Each arm is started once, pinned with taskset (routers on core 0, upstream and driver on
core 1), polled until healthy (the time that took is E5's start-to-healthy), and stopped by
its own pid at the end. An arm that cannot start carries ``not_run`` with the reason and
every experiment reports it as such instead of a number.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
LITELLM_BIN = ROOT / "bench" / ".venv-litellm" / "bin"
ROUTER_CORE = "0"
LOAD_CORE = "1"
ARM_NAMES = ("direct", "floor", "llmtap", "litellm")
# Set in the shell the bench may be run from (CI sandboxes, agent sessions), never by an
# installed llmtap: without bytecode caches every start compiles each module from source.
# Arms run with the environment a user's install has, so these are taken out.
SESSION_ONLY_ENV = ("PYTHONDONTWRITEBYTECODE",)
PROJECT_PACKAGES = ("router", "web", "addons", "certs", "bench")


def compile_project() -> None:
    """Write the bytecode caches an installed package has (pip compiles at install), so the
    first start of an arm is not also the first compile of llmtap's own modules."""
    import compileall

    for package in PROJECT_PACKAGES:
        compileall.compile_dir(ROOT / package, quiet=1, force=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(core: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", core, *argv] if shutil.which("taskset") else argv


def pin_self(core: str = LOAD_CORE) -> None:
    """Pin the driver (this process) next to the upstream, away from the router's core."""
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, {int(core)})


@dataclass
class Proc:
    """A child process we started, with its log file and start time."""

    name: str
    popen: subprocess.Popen[bytes]
    started: float
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def family(self) -> list[psutil.Process]:
        try:
            p = psutil.Process(self.pid)
            return [p, *p.children(recursive=True)]
        except psutil.Error:
            return []

    def rss_mb(self) -> float:
        total = 0
        for p in self.family():
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total / 2**20

    def cpu_s(self) -> float:
        total = 0.0
        for p in self.family():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, n: int = 15) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; the whole taskset'd group is ours (own session)."""
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)


def spawn(
    name: str,
    argv: list[str],
    logdir: Path,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    unset: tuple[str, ...] = (),
) -> Proc:
    log = logdir / f"{name}.log"
    fh = log.open("wb")
    started = time.monotonic()
    popen = subprocess.Popen(
        argv,
        stdout=fh,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={
            k: v
            for k, v in {**os.environ, **(env or {})}.items()
            if k not in unset and k not in SESSION_ONLY_ENV
        },
        cwd=cwd,
        start_new_session=True,
    )
    fh.close()
    return Proc(name, popen, started, log)


async def wait_healthy(proc: Proc, url: str, timeout_s: float = 90.0) -> float:
    """Poll ``url`` every 10 ms until it answers 2xx; seconds from spawn to that answer."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s:
        while time.monotonic() < deadline:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited: {proc.tail(5)}")
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with s.get(url) as r:
                    if r.status < 300:
                        return time.monotonic() - proc.started
            await asyncio.sleep(0.01)
    raise RuntimeError(f"{proc.name} not healthy after {timeout_s:.0f} s: {proc.tail(5)}")


@dataclass
class Arm:
    """One way to reach the fake upstream. ``proc`` is None for direct (no hop)."""

    name: str
    base: str = ""
    model: str = "bench"
    proc: Proc | None = None
    not_run: str | None = None
    start_to_healthy_s: float | None = None
    idle_rss_mb: float | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.not_run is None

    def openai_url(self) -> str:
        return self.base + "/v1/chat/completions"

    def anthropic_url(self) -> str:
        return self.base + "/v1/messages"


async def start_upstream(logdir: Path, *, tls: tuple[Path, Path] | None = None) -> tuple[Proc, str]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.upstream", "--port", str(port)]
    scheme = "http"
    if tls:
        argv += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        scheme = "https"
    proc = spawn("upstream-tls" if tls else "upstream", pinned(LOAD_CORE, argv), logdir)
    base = f"{scheme}://127.0.0.1:{port}"
    if not tls:
        await wait_healthy(proc, base + "/_bench/config", 30)
    else:
        await _wait_port(proc, port)
    return proc, base


async def _wait_port(proc: Proc, port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited: {proc.tail(5)}")
        with contextlib.suppress(OSError):
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        await asyncio.sleep(0.02)
    raise RuntimeError(f"{proc.name} did not listen on {port}")


async def set_pacing(upstream: str, **pacing: float) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(upstream + "/_bench/config", json=pacing) as r,
    ):
        r.raise_for_status()
        result: dict[str, Any] = await r.json()
        return result


async def _settle(arm: Arm) -> None:
    """Let a freshly healthy arm finish its start-up work, then take its idle RSS."""
    await asyncio.sleep(1.0)
    if arm.proc:
        arm.idle_rss_mb = arm.proc.rss_mb()


async def _launch(
    arm: Arm,
    argv: list[str],
    logdir: Path,
    health_path: str,
    *,
    timeout_s: float = 30,
    failed: str = "",
    env: dict[str, str] | None = None,
    unset: tuple[str, ...] = (),
) -> Arm:
    """Spawn ``arm`` pinned to the router core, time it to healthy and take its idle RSS;
    an arm that does not come up carries ``failed`` + the reason as ``not_run``."""
    try:
        arm.proc = spawn(arm.name, pinned(ROUTER_CORE, argv), logdir, env, unset=unset)
        arm.start_to_healthy_s = await wait_healthy(arm.proc, arm.base + health_path, timeout_s)
        await _settle(arm)
    except RuntimeError as exc:
        arm.not_run = failed + _short(str(exc)) if failed else str(exc)
        if arm.proc:
            arm.proc.stop()
    return arm


async def start_floor(upstream: str, logdir: Path) -> Arm:
    port = free_port()
    argv = [sys.executable, "-m", "bench.floor", "--port", str(port), "--upstream", upstream]
    return await _launch(Arm("floor", f"http://127.0.0.1:{port}"), argv, logdir, "/health")


def llmtap_argv(port: int, upstream: str, data_dir: Path) -> list[str]:
    return [
        str(VENV_BIN / "llmtap"),
        "up",
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        "--provider",
        f"openai={upstream}/v1,name=up",
    ]


async def start_llmtap(
    upstream: str,
    logdir: Path,
    *,
    env: dict[str, str] | None = None,
    name: str = "llmtap",
    extra_args: list[str] | None = None,
) -> Arm:
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="llmtap-bench-"))
    arm = Arm(name, f"http://127.0.0.1:{port}", model="up/bench")
    if not (VENV_BIN / "llmtap").exists():
        arm.not_run = "llmtap is not installed in .venv"
        return arm
    argv = llmtap_argv(port, upstream, data_dir) + (extra_args or [])
    return await _launch(arm, argv, logdir, "/v1", failed="`llmtap up` failed: ", env=env)


def litellm_config(upstream: str) -> str:
    # JSON is valid YAML, and needs no YAML library here.
    return json.dumps(
        {
            "model_list": [
                {
                    "model_name": "bench",
                    "litellm_params": {
                        "model": "openai/bench",
                        "api_base": upstream + "/v1",
                        "api_key": "sk-bench-not-a-secret",
                    },
                }
            ],
            "litellm_settings": {
                "num_retries": 0,
                "request_timeout": 30,
                "telemetry": False,
                "drop_params": True,
            },
            "router_settings": {"num_retries": 0},
            "general_settings": {},
        },
        indent=2,
    )


async def start_litellm(upstream: str, logdir: Path) -> Arm:
    arm = Arm("litellm")
    exe = LITELLM_BIN / "litellm"
    if not exe.exists():
        arm.not_run = "LiteLLM is not installed (bench/.venv-litellm missing; see scripts/bench)"
        return arm
    port = free_port()
    arm.base = f"http://127.0.0.1:{port}"
    cfg = logdir / "litellm.yaml"
    cfg.write_text(litellm_config(upstream))
    env = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        "NO_DOCS": "True",
    }
    # Merely setting these (even empty) makes LiteLLM reach for Prisma or Redis.
    unset = ("DATABASE_URL", "REDIS_HOST", "REDIS_URL", "LITELLM_MASTER_KEY")
    argv = [str(exe), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--num_workers", "1"]
    return await _launch(
        arm,
        argv,
        logdir,
        "/health/liveliness",
        timeout_s=120,
        failed="LiteLLM failed to start: ",
        env=env,
        unset=unset,
    )


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def version_of(exe: Path, *args: str) -> str:
    try:
        out = subprocess.run(
            [str(exe), *args], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "n/a"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[-1].strip() if text else "n/a"
