"""Soak (``./scripts/bench --soak``): llmtap's RSS growth over a long steady load through its
HTTP proxy, diverted into its own router, to the fake upstream.

The client is an agent behind ``HTTPS_PROXY``: it sends Copilot's chat call to
``https://api.githubcopilot.com/chat/completions`` through llmtap's proxy (trusting llmtap's
CA); the capture addons tag it, the agent's ``*`` mapping diverts it to the router, the router
calls the fake upstream (L = 50 ms). So every request crosses mitmproxy, the recorder, the
divert hop, the router, the inspector buffer and the call log: the whole per-call path whose
leaks would show. RSS (llmtap and its children) is sampled every 10 s; the growth is the
least-squares slope over the steady part (after the first fifth), with its noise (two standard
errors of the slope). Memory growth does not depend on how busy the machine is, so the result
holds under load; the load average is recorded beside it anyway.

The result is written to ``bench/soak.json`` (committed: a 30-minute run does not fit in the
quick suite) and the report's soak row is read from it, saying when and at which commit it
was measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import math
import os
import ssl
import subprocess
import sys
import tempfile
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import arms as armlib
from bench.driver import Row, Target, closed_loop, make_session, send_one
from bench.experiments.common import CHAT_MESSAGES
from bench.experiments.mitm import _llmtap_data_dir, _wait_file
from bench.stats import percentile, slope_per_minute

RESULT = armlib.ROOT / "bench" / "soak.json"
AGENT = "copilot"
HOST = "api.githubcopilot.com"
PATH = "/chat/completions"
SAMPLE_EVERY_S = 10.0
# In flight at most: 200 RPS at L = 50 ms needs about 10 when llmtap adds nothing.
WORKERS = 32
# Growth below this many MB per minute is "0" even when the slope's own noise is smaller:
# allocator arenas and SQLite's page cache settle in steps of this order.
FLAT_MB_PER_MIN = 0.05


def slope_noise(samples: list[tuple[float, float]]) -> float:
    """Two standard errors of the least-squares slope, in MB per minute."""
    n = len(samples)
    if n < 3:
        return math.nan
    xs = [s[0] for s in samples]
    ys = [s[1] for s in samples]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return math.nan
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    resid = sum((y - my - b * (x - mx)) ** 2 for x, y in zip(xs, ys, strict=True))
    return 2 * math.sqrt(resid / (n - 2) / sxx) * 60.0


@dataclass
class Paced:
    """What a paced run leaves: latencies of successful requests and errors by kind."""

    latencies_ms: array[float] = field(default_factory=lambda: array("d"))
    errors: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    late: int = 0  # sends that left more than 5 ms after their slot (workers all busy)
    wall_s: float = 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


async def paced_loop(
    target: Target, rate: float, duration_s: float, *, workers: int, timeout_s: float
) -> Paced:
    """Offer ``rate`` requests per second from at most ``workers`` requests in flight: each
    worker takes the next slot (``start + i / rate``), waits for it and sends. When llmtap
    cannot keep up, requests leave late (counted) instead of piling up in flight, so the
    memory measured is llmtap's own, not a backlog the driver built; the achieved rate says
    how much was actually offered. Bounded: at most ``rate * duration_s`` slots, none sent
    after ``duration_s``, each request bounded by ``timeout_s``."""
    out = Paced()
    n = max(1, int(rate * duration_s))
    next_slot = 0
    start = time.perf_counter() + 0.02
    session = make_session(workers, timeout_s)

    stop_at = start + duration_s

    async def worker() -> None:
        nonlocal next_slot
        while next_slot < n and time.perf_counter() < stop_at:
            i = next_slot
            next_slot += 1
            sched = start + i / rate
            wait = sched - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -0.005:
                out.late += 1
            row = Row(sched_s=i / rate)
            t = time.perf_counter()
            await send_one(session, target, row, t)
            out.requests += 1
            if row.ok:
                out.latencies_ms.append(row.total_ms)
            else:
                key = (row.error or f"HTTP {row.status}")[:80]
                out.errors[key] = out.errors.get(key, 0) + 1

    try:
        await asyncio.wait_for(
            asyncio.gather(*(worker() for _ in range(workers))), duration_s + timeout_s + 5
        )
    finally:
        await session.close()
    out.wall_s = time.perf_counter() - start
    return out


def verdict(slope: float, noise: float) -> str:
    if math.isnan(slope):
        return "n/a"
    return "met" if slope <= max(noise, FLAT_MB_PER_MIN) else "MISSED"


async def _start(workdir: Path, upstream: str) -> tuple[armlib.Arm, str, Path]:
    port = armlib.free_port()
    arm = await armlib.start_llmtap(
        upstream,
        workdir,
        name="llmtap-soak",
        env={"LLMTAP_HTTP_PROXY_AUTOSTART": "true", "LLMTAP_PROXY_PORT": str(port)},
        extra_args=["--proxy-port", str(port)],
    )
    if not arm.ok or arm.proc is None:
        raise RuntimeError(arm.not_run or "llmtap did not start")
    await armlib._wait_port(arm.proc, port)
    cafile = await _wait_file((_llmtap_data_dir(arm) / "ca", "*-ca-cert.pem"), arm.proc)
    body = {"mappings": [{"source": "*", "target": arm.model}]}
    url = f"{arm.base}/api/tools/agent-bridge/agents/{AGENT}/mappings"
    async with aiohttp.ClientSession() as s, s.put(url, json=body) as r:
        if r.status >= 300:
            arm.proc.stop()
            raise RuntimeError(f"mapping {AGENT} answered {r.status}: {(await r.text())[:200]}")
    return arm, f"http://127.0.0.1:{port}", cafile


def _target(proxy: str, cafile: Path) -> Target:
    body = {"model": "gpt-4o", "messages": CHAT_MESSAGES, "max_tokens": 32}
    return Target(
        f"https://{HOST}{PATH}",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "Authorization": "Bearer agent-token-0123456789"},
        proxy=proxy,
        ssl=ssl.create_default_context(cafile=str(cafile)),
    )


async def run_soak(minutes: float, rate: float, out: Path = RESULT) -> dict[str, Any]:
    """Run the soak and write its result to ``out``; returns the result."""
    armlib.pin_self()
    load0 = os.getloadavg()
    commit = _git_commit()  # the code under test is what was checked out when it started
    workdir = Path(tempfile.mkdtemp(prefix="llmtap-soak-"))
    print(f"== soak: {minutes:.0f} min at {rate:.0f} RPS (logs in {workdir})", file=sys.stderr)
    up_proc, upstream = await armlib.start_upstream(workdir)
    procs = [up_proc]
    samples: list[tuple[float, float]] = []
    loads: list[float] = [load0[0]]
    try:
        await armlib.set_pacing(upstream, latency_ms=50)
        arm, proxy, cafile = await _start(workdir, upstream)
        assert arm.proc is not None
        procs.append(arm.proc)
        proc = arm.proc
        target = _target(proxy, cafile)
        warm = await closed_loop(target, 10, concurrency=2, timeout_s=10)
        if warm.errors:
            bad = next(r for r in warm.rows if not r.ok)
            raise RuntimeError(f"warm-up through the proxy failed: {bad.error} — {proc.tail(5)}")
        stop = asyncio.Event()

        async def sample() -> None:
            t0 = time.monotonic()
            while not stop.is_set():
                samples.append((time.monotonic() - t0, proc.rss_mb()))
                loads.append(os.getloadavg()[0])
                if len(samples) % 6 == 0:
                    print(
                        f"   {samples[-1][0] / 60:5.1f} min  RSS {samples[-1][1]:.1f} MB"
                        f"  load {loads[-1]:.2f}",
                        file=sys.stderr,
                        flush=True,
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_S)

        sampler = asyncio.create_task(sample())
        try:
            res = await paced_loop(target, rate, minutes * 60, workers=WORKERS, timeout_s=10)
        finally:
            stop.set()
            await sampler
        samples.append((samples[-1][0] + SAMPLE_EVERY_S, proc.rss_mb()) if samples else (0, 0))
    finally:
        for p in reversed(procs):
            p.stop()
    steady = samples[len(samples) // 5 :]
    slope = slope_per_minute(steady)
    noise = slope_noise(steady)
    lat = list(res.latencies_ms)
    result: dict[str, Any] = {
        "when": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "minutes": minutes,
        "rate_rps": rate,
        "path": f"client -> llmtap HTTP proxy ({HOST}{PATH}, {AGENT} '*' mapping) -> router"
        " -> fake upstream (L = 50 ms)",
        "workers": WORKERS,
        "requests": res.requests,
        "errors": res.error_count,
        "error_kinds": res.errors,
        "achieved_rps": round(len(lat) / res.wall_s, 1) if res.wall_s else 0.0,
        "late_sends": res.late,
        "p50_ms": round(percentile(lat, 50), 2),
        "p99_ms": round(percentile(lat, 99), 2),
        "rss_start_mb": round(samples[0][1], 1) if samples else None,
        "rss_end_mb": round(samples[-1][1], 1) if samples else None,
        "rss_max_mb": round(max(s[1] for s in samples), 1) if samples else None,
        "slope_mb_per_min": round(slope, 3),
        "noise_mb_per_min": round(noise, 3),
        "verdict": verdict(slope, noise),
        "load_avg_1min": {
            "start": round(load0[0], 2),
            "median": round(percentile(loads, 50), 2),
            "max": round(max(loads), 2),
        },
        "samples": [[round(t, 1), round(m, 2)] for t, m in samples],
    }
    await asyncio.to_thread(out.write_text, json.dumps(result, indent=1) + "\n")
    print(
        f"soak: RSS {result['rss_start_mb']} -> {result['rss_end_mb']} MB, slope"
        f" {slope:+.3f} ±{noise:.3f} MB/min, errors {res.error_count}/{res.requests},"
        f" {result['achieved_rps']} RPS achieved -> {out}",
        file=sys.stderr,
    )
    return result


def _git_commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=armlib.ROOT,
        check=False,
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "router", "web", "addons", "certs"],
        capture_output=True,
        text=True,
        cwd=armlib.ROOT,
        check=False,
    )
    return out.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def load_result(path: Path = RESULT) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data
