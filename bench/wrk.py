"""Closed-loop rungs with Debian's wrk (C, so the driver is never the bottleneck) and its parser."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.arms import LOAD_CORE, pinned

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True, slots=True)
class WrkResult:
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx/3xx plus socket errors


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse(output: str, connections: int) -> WrkResult:
    """Parse ``wrk --latency`` output."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    p50 = re.search(r"^\s+50(?:\.000)?%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99(?:\.000)?%\s+(\S+)", output, re.M)
    if not (rps and total and p50 and p99):
        raise ValueError("wrk output without a latency distribution")
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non2xx:
        errors += int(non2xx.group(1))
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sock:
        errors += sum(int(g) for g in sock.groups())
    return WrkResult(
        connections, float(rps.group(1)), _ms(p50.group(1)), _ms(p99.group(1)),
        int(total.group(1)), errors,
    )  # fmt: skip


def lua_script(body: str, headers: dict[str, str]) -> str:
    def q(s: str) -> str:
        return "[==[" + s + "]==]"

    lines = ['wrk.method = "POST"', f"wrk.body = {q(body)}"]
    # The spaces matter: "[[" would open a Lua long string.
    lines += [f"wrk.headers[ {q(k)} ] = {q(v)}" for k, v in headers.items()]
    return "\n".join(lines) + "\n"


def available() -> bool:
    return shutil.which("wrk") is not None


def run(
    url: str,
    body: str,
    headers: dict[str, str],
    connections: int,
    duration_s: int,
    workdir: Path,
) -> WrkResult:
    script = workdir / "post.lua"
    script.write_text(lua_script(body, headers))
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", "--latency", "--timeout", "5s"]
    argv += ["-s", str(script), url]
    out = subprocess.run(
        pinned(LOAD_CORE, argv),
        capture_output=True,
        text=True,
        timeout=duration_s + 30,
        check=False,
    )
    if out.returncode != 0 or "lua" in out.stderr.lower() or ".lua:" in out.stdout:
        raise RuntimeError(f"wrk failed: {(out.stderr or out.stdout).strip()[-300:]}")
    return parse(out.stdout, connections)


def version() -> str:
    if not available():
        return "not installed"
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10, check=False)
    m = re.search(r"wrk\s+(\S+)", out.stdout or out.stderr)
    return f"wrk {m.group(1)}" if m else "wrk (unknown version)"
