"""Load drivers: an open-loop constant-arrival-rate driver and a closed-loop one, both aiohttp.

Open loop: request i is *scheduled* at ``start + i / rate`` whatever happened to the ones
before it, and its latency is measured from that scheduled time, so a stalled server shows up
as latency instead of silently lowering the offered load (coordinated omission). When the
driver itself cannot send on time it says so (``driver_limited``) instead of blaming the arm.

Every request leaves a raw :class:`Row`; streaming requests also count SSE frames (comment
lines are not frames) and the gaps between content frames.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp

from bench.stats import percentile

# A send that leaves this much after its scheduled time means the driver fell behind.
LAG_LIMIT_MS = 5.0
_CONTENT_RE = re.compile(rb'"(?:content|text)":"[^"]')


@dataclass(slots=True)
class Target:
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    stream: bool = False
    proxy: str | None = None
    ssl: ssl.SSLContext | bool = True


@dataclass(slots=True)
class Row:
    """One request. Times are ms from its scheduled send (closed loop: its actual send)."""

    sched_s: float  # scheduled send, seconds from the run start
    lag_ms: float = 0.0  # actual send minus scheduled send
    ttfb_ms: float = float("nan")  # response headers
    first_content_ms: float = float("nan")  # first SSE frame with content (streams only)
    total_ms: float = float("nan")  # body fully read
    status: int = 0
    frames: int = 0  # SSE data frames (comments excluded)
    content_frames: int = 0
    gaps_ms: list[float] = field(default_factory=list)  # between content frames
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300


@dataclass(slots=True)
class RunResult:
    rows: list[Row]
    offered_rps: float  # 0 for closed loop
    duration_s: float  # the scheduled window
    wall_s: float  # until the last response
    driver_limited: bool = False
    note: str = ""

    @property
    def errors(self) -> int:
        return sum(1 for r in self.rows if not r.ok)

    @property
    def ok_rows(self) -> list[Row]:
        return [r for r in self.rows if r.ok]

    @property
    def achieved_rps(self) -> float:
        return len(self.ok_rows) / self.wall_s if self.wall_s > 0 else 0.0

    def pct(self, metric: str, q: float) -> float:
        """Percentile of a per-row metric over successful requests (``gaps_ms`` pools every
        gap of every request)."""
        if metric == "gaps_ms":
            return percentile([g for r in self.ok_rows for g in r.gaps_ms], q)
        return percentile([getattr(r, metric) for r in self.ok_rows], q)

    def summary(self) -> dict[str, Any]:
        return {
            "offered_rps": self.offered_rps,
            "achieved_rps": round(self.achieved_rps, 1),
            "requests": len(self.rows),
            "errors": self.errors,
            "p50_ms": round(self.pct("total_ms", 50), 3),
            "p99_ms": round(self.pct("total_ms", 99), 3),
            "lag_p99_ms": round(percentile([r.lag_ms for r in self.rows], 99), 3),
            "driver_limited": self.driver_limited,
            "note": self.note,
        }

    def raw(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.rows]


def split_events(buf: bytes) -> tuple[list[bytes], bytes]:
    """Complete SSE events in ``buf`` (separated by a blank line) and the unfinished rest."""
    buf = buf.replace(b"\r\n", b"\n")
    parts = buf.split(b"\n\n")
    return [p for p in parts[:-1] if p.strip()], parts[-1]


def is_data_event(event: bytes) -> bool:
    """True unless every line is an SSE comment (``: ...``) — comments are not frames."""
    return any(line and not line.startswith(b":") for line in event.split(b"\n"))


def is_content_event(event: bytes) -> bool:
    """An OpenAI chunk with non-empty delta content or an Anthropic text_delta."""
    return is_data_event(event) and (
        b'"text_delta"' in event or (b'"delta"' in event and bool(_CONTENT_RE.search(event)))
    )


async def _read_stream(resp: aiohttp.ClientResponse, row: Row, t_send: float) -> None:
    buf = b""
    last_content: float | None = None
    async for chunk in resp.content.iter_any():
        now = time.perf_counter()
        events, buf = split_events(buf + chunk)
        for ev in events:
            if not is_data_event(ev):
                continue
            row.frames += 1
            if is_content_event(ev):
                row.content_frames += 1
                if last_content is None:
                    row.first_content_ms = (now - t_send) * 1000
                else:
                    row.gaps_ms.append((now - last_content) * 1000)
                last_content = now


async def send_one(session: aiohttp.ClientSession, target: Target, row: Row, t_ref: float) -> None:
    """Send ``target`` and fill ``row``; times are measured from ``t_ref`` (perf_counter)."""
    try:
        async with session.post(
            target.url,
            data=target.body,
            headers=target.headers,
            proxy=target.proxy,
            ssl=target.ssl,
        ) as resp:
            row.status = resp.status
            row.ttfb_ms = (time.perf_counter() - t_ref) * 1000
            if target.stream and resp.status < 300:
                await _read_stream(resp, row, t_ref)
            else:
                await resp.read()
            row.total_ms = (time.perf_counter() - t_ref) * 1000
            if resp.status >= 300:
                row.error = f"HTTP {resp.status}"
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        row.error = type(exc).__name__ + (f": {exc}" if str(exc) else "")


def make_session(limit: int, timeout_s: float) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, keepalive_timeout=60),
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        auto_decompress=False,
    )


async def open_loop(
    target: Target,
    rate: float,
    duration_s: float,
    *,
    timeout_s: float = 10.0,
    max_in_flight: int = 2000,
    session: aiohttp.ClientSession | None = None,
) -> RunResult:
    """Offer ``rate`` requests per second for ``duration_s`` seconds (bounded: exactly
    ``rate * duration_s`` requests, each bounded by ``timeout_s``)."""
    if rate <= 0 or duration_s <= 0:
        raise ValueError("rate and duration must be positive")
    own = session is None
    sess = session or make_session(max_in_flight, timeout_s)
    n = max(1, int(rate * duration_s))
    rows = [Row(sched_s=i / rate) for i in range(n)]
    tasks: set[asyncio.Task[None]] = set()
    in_flight_capped = False
    start = time.perf_counter() + 0.02
    try:
        i = 0
        while i < n:
            now = time.perf_counter()
            while i < n and start + rows[i].sched_s <= now:
                if len(tasks) >= max_in_flight:
                    in_flight_capped = True
                    break
                sched = start + rows[i].sched_s
                rows[i].lag_ms = (now - sched) * 1000
                task = asyncio.create_task(send_one(sess, target, rows[i], sched))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
            if i < n:
                wait = start + rows[i].sched_s - time.perf_counter()
                await asyncio.sleep(wait if wait > 0 else 0.0005)
        if tasks:
            await asyncio.wait(set(tasks), timeout=timeout_s + 1)
        wall = time.perf_counter() - start
    finally:
        for task in tasks:
            task.cancel()
        if own:
            await sess.close()
    lag_p99 = percentile([r.lag_ms for r in rows], 99)
    limited = in_flight_capped or lag_p99 > LAG_LIMIT_MS
    note = ""
    if limited:
        note = "in-flight cap hit" if in_flight_capped else f"send lag p99 {lag_p99:.1f} ms"
    for r in rows:
        if r.status == 0 and r.error is None:
            r.error = "not finished"
    return RunResult(rows, rate, duration_s, wall, limited, note)


async def closed_loop(
    target: Target,
    count: int,
    *,
    concurrency: int = 1,
    duration_s: float | None = None,
    timeout_s: float = 10.0,
    session: aiohttp.ClientSession | None = None,
) -> RunResult:
    """At most ``count`` requests from ``concurrency`` workers, each sending its next request
    as soon as its previous one finished (latency from the actual send); with
    ``duration_s`` no request is started after that many seconds."""
    own = session is None
    sess = session or make_session(max(concurrency, 1), timeout_s)
    rows: list[Row] = []
    start = time.perf_counter()
    stop_at = start + duration_s if duration_s else float("inf")
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and time.perf_counter() < stop_at:
            remaining -= 1
            t = time.perf_counter()
            row = Row(sched_s=t - start)
            rows.append(row)
            await send_one(sess, target, row, t)

    bound = (duration_s or timeout_s * max(1, count)) + timeout_s + 1
    try:
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), bound)
    finally:
        if own:
            await sess.close()
    wall = time.perf_counter() - start
    return RunResult(rows, 0.0, wall, wall)
