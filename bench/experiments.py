"""The experiments (calibration, E1-E5, MITM, inspector), one function each.

Every experiment runs its arms side by side in rounds, rotating the arm order each round, and
keeps per-round values; the report shows the median of the round values with min–max, and
ratios computed within each round (so machine drift cancels) before taking their median.
An experiment that fails records ``not run: <reason>``; nothing is ever filled in by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import arms as armlib
from bench import wrk
from bench.arms import Arm, Proc, set_pacing
from bench.driver import RunResult, Target, closed_loop, open_loop
from bench.profile import Profile, profile_pid
from bench.report import Headline, Section, verdict
from bench.stats import Spread, added, frontier, ratios, slope_per_minute, spread

NAN = math.nan


@dataclass(frozen=True)
class Plan:
    quick: bool
    rounds: int
    e1_requests: dict[int, int]  # upstream latency ms -> requests per arm per round
    e2_rates: tuple[int, ...]
    e2_duration_s: float
    e2_rounds: int
    e3_connections: tuple[int, ...]
    e3_duration_s: int
    e3_rounds: int
    e4_streams: int
    e4_chunks: int
    e4_rounds: int
    e5_soak_s: float
    e5_soak_rate: float
    e5_starts: int
    mitm_duration_s: float
    mitm_rounds: int
    mitm_concurrency: int
    mitm_streams: int
    inspector_budget_s: float
    calib_duration_s: float
    profile_s: float
    timeout_s: float

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if quick:
            return cls(
                quick=True, rounds=3, e1_requests={0: 60, 20: 20},
                e2_rates=(50, 150), e2_duration_s=2.0, e2_rounds=2,
                e3_connections=(1, 8, 32), e3_duration_s=2, e3_rounds=1,
                e4_streams=4, e4_chunks=20, e4_rounds=2,
                e5_soak_s=15.0, e5_soak_rate=50.0, e5_starts=2,
                mitm_duration_s=2.0, mitm_rounds=2, mitm_concurrency=8, mitm_streams=4,
                inspector_budget_s=8.0, calib_duration_s=2.0, profile_s=3.0, timeout_s=3.0,
            )  # fmt: skip
        return cls(
            quick=False, rounds=5, e1_requests={0: 200, 20: 80},
            e2_rates=(50, 100, 200, 400, 800), e2_duration_s=6.0, e2_rounds=3,
            e3_connections=(1, 2, 4, 8, 16, 32, 64), e3_duration_s=3, e3_rounds=2,
            e4_streams=10, e4_chunks=50, e4_rounds=3,
            e5_soak_s=300.0, e5_soak_rate=100.0, e5_starts=5,
            mitm_duration_s=8.0, mitm_rounds=3, mitm_concurrency=8, mitm_streams=10,
            inspector_budget_s=120.0, calib_duration_s=5.0, profile_s=10.0, timeout_s=10.0,
        )  # fmt: skip


@dataclass
class Ctx:
    plan: Plan
    upstream: str
    upstream_proc: Proc
    arms: dict[str, Arm]
    workdir: Path
    rawdir: Path
    headline: list[Headline] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    misses: list[tuple[str, str]] = field(default_factory=list)  # (target, profile key)
    profiles: dict[str, Profile] = field(default_factory=dict)
    load_rss_mb: dict[str, float] = field(default_factory=dict)
    driver_limited: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def live(self) -> list[Arm]:
        return [a for a in self.arms.values() if a.ok]

    def rotated(self, rnd: int, names: list[str] | None = None) -> list[Arm]:
        """The live arms in an order rotated by the round number, so no arm always runs
        first (warm caches) or last (after the others heated the machine)."""
        live = [a for a in self.live() if names is None or a.name in names]
        if not live:
            return []
        k = rnd % len(live)
        return live[k:] + live[:k]

    def save_raw(self, name: str, result: RunResult) -> None:
        path = self.rawdir / f"{name}.jsonl"
        with path.open("a") as fh:
            fh.write(json.dumps({"summary": result.summary()}) + "\n")
            for row in result.raw():
                fh.write(json.dumps(row) + "\n")

    def note_limited(self, what: str, result: RunResult) -> None:
        if result.driver_limited:
            self.driver_limited.append(f"{what}: {result.note}")


# --------------------------------------------------------------------------- requests

CHAT_MESSAGES = [{"role": "user", "content": "Say hello in five words."}]


def openai_target(arm: Arm, *, stream: bool = False) -> Target:
    body: dict[str, Any] = {"model": arm.model, "messages": CHAT_MESSAGES, "max_tokens": 32}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench-x"}
    return Target(arm.openai_url(), json.dumps(body).encode(), headers, stream=stream)


def anthropic_target(arm: Arm, *, stream: bool = True) -> Target:
    body = {"model": arm.model, "messages": CHAT_MESSAGES, "max_tokens": 32, "stream": stream}
    headers = {
        "Content-Type": "application/json",
        "x-api-key": "sk-bench-x",
        "anthropic-version": "2023-06-01",
    }
    return Target(arm.anthropic_url(), json.dumps(body).encode(), headers, stream=stream)


# --------------------------------------------------------------------------- helpers


def compare_row(
    metric: str,
    per_round: dict[str, list[float]],
    *,
    target: str = "",
    check: Callable[[dict[str, Spread]], str] | None = None,
    digits: int = 2,
    unit: str = " ms",
    notes: dict[str, str] | None = None,
) -> Headline:
    """A latency row: direct shows its absolute value, the others the latency they add over
    direct in the same round; llmtap/direct compares absolute values, llmtap/floor and
    llmtap/LiteLLM compare added latency."""
    base = per_round.get("direct")
    cells: dict[str, str] = {}
    sp: dict[str, Spread] = {}
    adds: dict[str, list[float]] = {}
    for name, vals in per_round.items():
        if name == "direct":
            sp[name] = spread(vals)
            cells[name] = sp[name].fmt(digits, unit) + " abs"
        elif base is not None and len(base) == len(vals):
            adds[name] = added(vals, base)
            sp[name] = spread(adds[name])
            cells[name] = "+" + sp[name].fmt(digits, unit)
    if base is not None and "llmtap" in per_round:
        sp["llmtap/direct"] = spread(ratios(per_round["llmtap"], base))
        cells["llmtap/direct"] = sp["llmtap/direct"].fmt(2, "x")
    for other, col in (("floor", "llmtap/floor"), ("litellm", "llmtap/LiteLLM")):
        if "llmtap" in adds and other in adds:
            sp[col] = spread(ratios(adds["llmtap"], adds[other]))
            cells[col] = sp[col].fmt(2, "x")
    for name, text in (notes or {}).items():
        cells[name] = (cells.get(name, "") + " " + text).strip()
    return Headline(metric, cells, target, check(sp) if check else "")


def value_row(
    metric: str,
    per_round: dict[str, list[float]],
    *,
    target: str = "",
    check: Callable[[dict[str, Spread]], str] | None = None,
    digits: int = 1,
    unit: str = "",
    ratio_cols: tuple[str, ...] = ("direct", "floor", "litellm"),
) -> Headline:
    """A row of absolute per-arm values (throughput, RSS, CPU) and per-round ratios."""
    cells: dict[str, str] = {}
    sp: dict[str, Spread] = {}
    for name, vals in per_round.items():
        sp[name] = spread(vals)
        cells[name] = sp[name].fmt(digits, unit)
    cols = {"direct": "llmtap/direct", "floor": "llmtap/floor", "litellm": "llmtap/LiteLLM"}
    for other in ratio_cols:
        if "llmtap" in per_round and other in per_round:
            n = len(per_round["llmtap"])
            if n == len(per_round[other]):
                sp[cols[other]] = spread(ratios(per_round["llmtap"], per_round[other]))
                cells[cols[other]] = sp[cols[other]].fmt(2, "x")
    return Headline(metric, cells, target, check(sp) if check else "")


def ms(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:.2f}"


async def guarded(ctx: Ctx, title: str, fn: Callable[[Ctx], Awaitable[None]]) -> None:
    """Run one experiment; a failure becomes a 'not run' section, never a crash of the suite."""
    t = time.monotonic()
    print(f"== {title}", file=sys.stderr, flush=True)
    try:
        await fn(ctx)
    except Exception as exc:
        sec = Section(title)
        sec.para(f"**not run: {type(exc).__name__}: {exc}**")
        ctx.sections.append(sec)
        ctx.headline.append(Headline(title, {}, "", f"not run: {type(exc).__name__}"))
        print(f"   failed: {exc!r}", file=sys.stderr, flush=True)
    print(f"   {time.monotonic() - t:.1f} s", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- calibration


async def calibrate(ctx: Ctx) -> None:
    """Direct p99 must stay within L + 2 ms at twice the highest E2 rate, or the fake
    upstream + driver pair is itself the bottleneck and E2's high rates are suspect."""
    latency = 50.0
    rate = 2 * max(ctx.plan.e2_rates)
    await set_pacing(ctx.upstream, latency_ms=latency)
    direct = ctx.arms["direct"]
    await closed_loop(openai_target(direct), 20)
    res = await open_loop(openai_target(direct), rate, ctx.plan.calib_duration_s, timeout_s=5)
    ctx.save_raw("calibration", res)
    p99 = res.pct("total_ms", 99)
    ok = p99 <= latency + 2 and res.errors == 0 and not res.driver_limited
    ctx.extra["calibration"] = {"rate": rate, "p99": p99, "ok": ok, **res.summary()}
    sec = Section("Calibration of the fake upstream")
    sec.para(
        f"Direct to the fake upstream at {rate} RPS (twice the highest E2 rate), L = {latency:.0f}"
        f" ms, {ctx.plan.calib_duration_s:.0f} s open loop: p50 {ms(res.pct('total_ms', 50))} ms,"
        f" p99 {ms(p99)} ms (bar: p99 ≤ L + 2 = {latency + 2:.0f} ms), errors {res.errors},"
        f" achieved {res.achieved_rps:.0f} RPS, send-lag p99"
        f" {res.summary()['lag_p99_ms']} ms. **{'PASSED' if ok else 'FAILED'}**"
        + (
            ""
            if ok
            else " — the upstream+driver pair cannot hold this rate on this machine, so E2"
            " rungs near it measure the harness as much as the arm; read them as upper bounds."
        )
    )
    # A lower rate as a second reading, to show where the harness does hold.
    half = max(ctx.plan.e2_rates)
    res2 = await open_loop(openai_target(direct), half, ctx.plan.calib_duration_s, timeout_s=5)
    sec.para(
        f"At {half} RPS (the highest E2 rate): p99 {ms(res2.pct('total_ms', 99))} ms, errors"
        f" {res2.errors}, send-lag p99 {res2.summary()['lag_p99_ms']} ms."
    )
    ctx.sections.append(sec)


# --------------------------------------------------------------------------- E1


async def e1_single(ctx: Ctx) -> None:
    """(E1) added p50/p99 with one request in flight, non-streaming, L=0 and L=20 ms."""
    sec = Section("E1 — added latency, one request in flight (non-streaming)")
    rows: list[list[str]] = []
    for latency, n in ctx.plan.e1_requests.items():
        await set_pacing(ctx.upstream, latency_ms=latency)
        p50: dict[str, list[float]] = {a.name: [] for a in ctx.live()}
        p99: dict[str, list[float]] = {a.name: [] for a in ctx.live()}
        errors: dict[str, int] = dict.fromkeys(p50, 0)
        for rnd in range(ctx.plan.rounds):
            for arm in ctx.rotated(rnd):
                target = openai_target(arm)
                await closed_loop(target, 5, timeout_s=ctx.plan.timeout_s)  # warm the pools
                res = await closed_loop(target, n, timeout_s=ctx.plan.timeout_s)
                ctx.save_raw(f"e1_L{latency}_{arm.name}", res)
                errors[arm.name] += res.errors
                p50[arm.name].append(res.pct("total_ms", 50))
                p99[arm.name].append(res.pct("total_ms", 99))
        notes = {k: f"({v} errors)" for k, v in errors.items() if v}
        for name in p50:
            rows.append(
                [
                    f"{latency}",
                    name,
                    spread(p50[name]).fmt(3),
                    spread(p99[name]).fmt(3),
                    str(errors[name]),
                ]
            )

        def c1_check(sp: dict[str, Spread]) -> str:
            lit = sp.get("llmtap/LiteLLM")
            flo = sp.get("llmtap/floor")
            parts = []
            if lit is not None:
                parts.append(verdict(lit, at_most=0.2))
            if flo is not None:
                parts.append(verdict(flo, at_most=1.5))
            if not parts:
                return "n/a"
            return "MISSED" if "MISSED" in parts else ("met" if "met" in parts else "n/a")

        tgt = "≤ 1/5 of LiteLLM's added, ≤ 1.5x floor's"
        ctx.headline.append(
            compare_row(
                f"E1 p50 @c=1, L={latency} ms", p50, target=tgt, check=c1_check, notes=notes
            )
        )
        ctx.headline.append(
            compare_row(f"E1 p99 @c=1, L={latency} ms", p99, target=tgt, check=c1_check)
        )
        for row in ctx.headline[-2:]:
            if row.verdict == "MISSED":
                ctx.misses.append((row.metric, "nonstream"))
    sec.para(
        f"Closed loop, one request at a time, {ctx.plan.rounds} rounds; requests per arm per round:"
        f" {ctx.plan.e1_requests} (by L). Values: medians of round values (min–max), total"
        " latency in ms as the client saw it."
    )
    sec.table(["L ms", "arm", "p50 ms", "p99 ms", "errors"], rows)
    ctx.sections.append(sec)


# --------------------------------------------------------------------------- E2


async def e2_rates(ctx: Ctx) -> None:
    """(E2) added latency at fixed arrival rates with L=50 ms, and router CPU-ms per request."""
    await set_pacing(ctx.upstream, latency_ms=50)
    sec = Section("E2 — added latency at fixed arrival rates (L = 50 ms, open loop)")
    table: list[list[str]] = []
    saturated: dict[str, int] = {}
    best: dict[str, Any] = {}
    for rate in ctx.plan.e2_rates:
        p50: dict[str, list[float]] = {}
        p99: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}
        errs: dict[str, int] = {}
        limited: dict[str, bool] = {}
        for rnd in range(ctx.plan.e2_rounds):
            for arm in ctx.rotated(rnd):
                if arm.name in saturated:
                    continue
                target = openai_target(arm)
                await closed_loop(target, 10, timeout_s=ctx.plan.timeout_s)
                cpu0 = arm.proc.cpu_s() if arm.proc else 0.0
                res = await open_loop(
                    target, rate, ctx.plan.e2_duration_s, timeout_s=ctx.plan.timeout_s
                )
                cpu1 = arm.proc.cpu_s() if arm.proc else 0.0
                if arm.proc:
                    rss = arm.proc.rss_mb()
                    ctx.load_rss_mb[arm.name] = max(ctx.load_rss_mb.get(arm.name, 0.0), rss)
                ctx.save_raw(f"e2_{rate}_{arm.name}", res)
                ctx.note_limited(f"E2 {rate} RPS {arm.name}", res)
                p50.setdefault(arm.name, []).append(res.pct("total_ms", 50))
                p99.setdefault(arm.name, []).append(res.pct("total_ms", 99))
                done = max(1, len(res.rows) - res.errors)
                cpu.setdefault(arm.name, []).append((cpu1 - cpu0) * 1000 / done)
                errs[arm.name] = errs.get(arm.name, 0) + res.errors
                limited[arm.name] = limited.get(arm.name, False) or res.driver_limited
        for name in list(p50):
            if errs[name] > 0.01 * rate * ctx.plan.e2_duration_s * ctx.plan.e2_rounds or (
                spread(p99[name]).median > 2000
            ):
                saturated[name] = rate
        base = p50.get("direct")
        for name in p50:
            a50 = spread(added(p50[name], base)) if base and name != "direct" else None
            a99 = (
                spread(added(p99[name], p99["direct"]))
                if base and name != "direct" and len(p99[name]) == len(p99["direct"])
                else None
            )
            table.append(
                [
                    str(rate),
                    name,
                    spread(p50[name]).fmt(2),
                    spread(p99[name]).fmt(2),
                    a50.fmt(2) if a50 and len(p50[name]) == len(base or []) else "—",
                    a99.fmt(2) if a99 else "—",
                    spread(cpu[name]).fmt(3) if name != "direct" else "—",
                    str(errs[name]),
                    "yes" if limited[name] else "",
                    "saturated (stops here)" if saturated.get(name) == rate else "",
                ]
            )
        # Headline: the highest rate llmtap held (its saturating rate only if it held none).
        if "llmtap" in p50 and "direct" in p50 and (saturated.get("llmtap") != rate or not best):
            best = {"rate": rate, "p50": p50, "p99": p99, "cpu": cpu, "errs": errs}
    sec.para(
        f"Open loop, {ctx.plan.e2_duration_s:.0f} s per arm per rate, {ctx.plan.e2_rounds} rounds,"
        " latency from each request's scheduled send time. Added = arm minus direct in the same"
        " round. CPU = router process CPU (user+system, with children) per completed request."
        " An arm with >1% errors or p99 > 2 s at a rate is not offered higher rates."
    )
    sec.table(
        [
            "RPS", "arm", "p50 ms", "p99 ms", "added p50", "added p99", "router CPU ms/req",
            "errors", "driver-limited", "",
        ],
        table,
    )  # fmt: skip
    ctx.sections.append(sec)
    if best:
        rate = best["rate"]
        sat_note = {n: f"(saturated at {r} RPS)" for n, r in saturated.items() if r <= rate}
        cmp_p50 = {k: v for k, v in best["p50"].items() if len(v) == len(best["p50"]["direct"])}
        cmp_p99 = {k: v for k, v in best["p99"].items() if len(v) == len(best["p99"]["direct"])}
        ctx.headline.append(compare_row(f"E2 p50 @ {rate} RPS, L=50", cmp_p50, notes=sat_note))
        ctx.headline.append(compare_row(f"E2 p99 @ {rate} RPS, L=50", cmp_p99))
        cpu_rows = {k: v for k, v in best["cpu"].items() if k != "direct"}
        ctx.headline.append(
            value_row(
                f"E2 router CPU ms/request @ {rate} RPS",
                cpu_rows,
                digits=3,
                ratio_cols=("floor", "litellm"),
            )
        )
    ctx.extra["e2_saturated"] = saturated


# --------------------------------------------------------------------------- E3


async def e3_frontier(ctx: Ctx) -> None:
    """(E3) the most RPS with p99 < 10 ms / < 50 ms and no errors, closed loop with wrk."""
    if not wrk.available():
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    await set_pacing(ctx.upstream, latency_ms=0)
    sec = Section("E3 — throughput frontier (L = 0, closed loop, wrk)")
    f10: dict[str, list[float]] = {}
    f50: dict[str, list[float]] = {}
    table: list[list[str]] = []
    body = json.dumps({"model": "bench", "messages": CHAT_MESSAGES, "max_tokens": 32})
    for rnd in range(ctx.plan.e3_rounds):
        for arm in ctx.rotated(rnd):
            t = openai_target(arm)
            rungs: list[tuple[float, float, int]] = []
            for conns in ctx.plan.e3_connections:
                res = await asyncio.to_thread(
                    wrk.run,
                    t.url,
                    body.replace('"bench"', json.dumps(arm.model)),
                    t.headers,
                    conns,
                    ctx.plan.e3_duration_s,
                    ctx.workdir,
                )
                rungs.append((res.rps, res.p99_ms, res.errors))
                table.append(
                    [
                        str(rnd + 1), arm.name, str(conns), f"{res.rps:.0f}",
                        f"{res.p50_ms:.2f}", f"{res.p99_ms:.2f}", str(res.errors),
                    ]
                )  # fmt: skip
                # Saturated: more connections only queue. Stop once throughput stopped growing
                # while p99 is already past any limit we read, or errors pile up.
                best_rps = max(r[0] for r in rungs[:-1]) if len(rungs) > 1 else 0.0
                if res.errors > res.requests * 0.05 or (
                    res.p99_ms > 100 and res.rps < 1.1 * best_rps
                ):
                    break
            f10.setdefault(arm.name, []).append(frontier(rungs, 10))
            f50.setdefault(arm.name, []).append(frontier(rungs, 50))
    sec.para(
        f"wrk (1 thread, pinned to the driver core) at {ctx.plan.e3_connections} connections,"
        f" {ctx.plan.e3_duration_s} s per rung, {ctx.plan.e3_rounds} round(s); the frontier is"
        " the highest rung throughput whose p99 is under the limit with zero errors. A ladder"
        " stops once a rung over 100 ms p99 no longer adds 10% throughput."
    )
    sec.table(["round", "arm", "connections", "RPS", "p50 ms", "p99 ms", "errors"], table)
    ctx.sections.append(sec)

    def at_least_10(sp: dict[str, Spread]) -> str:
        lit = sp.get("llmtap/LiteLLM")
        if lit is None:
            return "n/a"
        if not lit.ok and sp.get("llmtap", Spread(NAN, NAN, NAN, 0)).median > 0:
            return "met (LiteLLM 0)"
        return verdict(lit, at_least=10)

    for label, data in (("p99 < 10 ms", f10), ("p99 < 50 ms", f50)):
        row = value_row(
            f"E3 throughput frontier, {label} (RPS)",
            data,
            target="≥ 10x one LiteLLM process",
            check=at_least_10,
            digits=0,
        )
        ctx.headline.append(row)
        if row.verdict == "MISSED":
            ctx.misses.append((row.metric, "nonstream"))


# --------------------------------------------------------------------------- E4


async def e4_streaming(ctx: Ctx) -> None:
    """(E4) streaming: added TTFB, added first content, inter-frame gaps, frames delivered."""
    k = ctx.plan.e4_chunks
    await set_pacing(ctx.upstream, latency_ms=0, t0_ms=20, chunks=k, interval_ms=5)
    sec = Section("E4 — streaming (T0 = 20 ms, K frames every 5 ms)")
    table: list[list[str]] = []
    try:
        for lane, make in (("OpenAI→OpenAI", openai_target), ("Anthropic-in→OpenAI-up", None)):
            ttfb: dict[str, list[float]] = {}
            first: dict[str, list[float]] = {}
            total: dict[str, list[float]] = {}
            gap50: dict[str, list[float]] = {}
            gap99: dict[str, list[float]] = {}
            frames_min: dict[str, int] = {}
            errs: dict[str, int] = {}
            for rnd in range(ctx.plan.e4_rounds):
                for arm in ctx.rotated(rnd):
                    target = make(arm, stream=True) if make else anthropic_target(arm, stream=True)
                    await closed_loop(target, 2, timeout_s=ctx.plan.timeout_s)
                    res = await closed_loop(
                        target, ctx.plan.e4_streams, timeout_s=ctx.plan.timeout_s
                    )
                    ctx.save_raw(f"e4_{lane[:6]}_{arm.name}", res)
                    ttfb.setdefault(arm.name, []).append(res.pct("ttfb_ms", 50))
                    first.setdefault(arm.name, []).append(res.pct("first_content_ms", 50))
                    total.setdefault(arm.name, []).append(res.pct("total_ms", 50))
                    gap50.setdefault(arm.name, []).append(res.pct("gaps_ms", 50))
                    gap99.setdefault(arm.name, []).append(res.pct("gaps_ms", 99))
                    got = [r.content_frames for r in res.rows]
                    frames_min[arm.name] = min(frames_min.get(arm.name, k), *got, k)
                    errs[arm.name] = errs.get(arm.name, 0) + res.errors
            per_frame: dict[str, list[float]] = {}
            for name in total:
                # What the hop adds per frame after the first: the extra stream time spread
                # over the K-1 paced frames.
                per_frame[name] = [
                    (t - f) / max(1, k - 1) for t, f in zip(total[name], first[name], strict=True)
                ]
            for name in ttfb:
                table.append(
                    [
                        lane, name, spread(ttfb[name]).fmt(2), spread(first[name]).fmt(2),
                        spread(gap50[name]).fmt(2), spread(gap99[name]).fmt(2),
                        f"{frames_min[name]}/{k}", str(errs[name]),
                    ]
                )  # fmt: skip
            frame_notes = {n: f"[frames {frames_min[n]}/{k}]" for n in frames_min}
            ctx.headline.append(compare_row(f"E4 {lane} added TTFB p50", ttfb))

            def first_check(sp: dict[str, Spread]) -> str:
                v = sp.get("llmtap")
                return verdict(v, at_most=2.0) if v else "n/a"

            def frame_check(sp: dict[str, Spread]) -> str:
                v = sp.get("llmtap")
                return verdict(v, at_most=0.5) if v else "n/a"

            row = compare_row(
                f"E4 {lane} added first content p50",
                first,
                target="llmtap adds < 2 ms",
                check=first_check,
                notes=frame_notes,
            )
            ctx.headline.append(row)
            if row.verdict == "MISSED":
                ctx.misses.append((row.metric, "stream"))
            row = compare_row(
                f"E4 {lane} added per frame",
                per_frame,
                target="llmtap adds < 0.5 ms",
                check=frame_check,
                digits=3,
            )
            ctx.headline.append(row)
            if row.verdict == "MISSED":
                ctx.misses.append((row.metric, "stream"))
            ctx.headline.append(compare_row(f"E4 {lane} inter-frame gap p99", gap99))
    finally:
        await set_pacing(ctx.upstream, t0_ms=0)
    sec.para(
        f"{ctx.plan.e4_streams} sequential streams per arm per round, {ctx.plan.e4_rounds} rounds."
        " TTFB = response headers; first content = first SSE frame carrying text; gaps between"
        " content frames (SSE comment lines are not frames). The Anthropic lane sends Anthropic"
        " messages: llmtap and LiteLLM translate to the OpenAI upstream, while direct and the"
        " floor talk to the fake upstream's own Anthropic endpoint (same pacing), so their"
        " numbers are the no-translation baseline. Added per frame = (total − first content)"
        " / (K − 1), minus direct's."
    )
    sec.table(
        ["lane", "arm", "TTFB p50", "first content p50", "gap p50", "gap p99", "frames", "errors"],
        table,
    )
    ctx.sections.append(sec)


# --------------------------------------------------------------------------- E5


async def e5_memory(ctx: Ctx) -> None:
    """(E5) RSS idle, under load, growth per minute under a soak, and start-to-healthy."""
    sec = Section("E5 — memory and start-up")
    llmtap = ctx.arms.get("llmtap")
    starts: dict[str, list[float]] = {}
    for name, arm in ctx.arms.items():
        if arm.start_to_healthy_s is not None:
            starts[name] = [arm.start_to_healthy_s]
    if llmtap is not None and llmtap.ok:
        for i in range(ctx.plan.e5_starts - 1):
            extra = await armlib.start_llmtap(
                ctx.upstream, ctx.workdir, name=f"llmtap-start{i + 2}"
            )
            if extra.proc:
                extra.proc.stop()
            if extra.start_to_healthy_s is not None:
                starts["llmtap"].append(extra.start_to_healthy_s)
    soak: list[tuple[float, float]] = []
    soak_res: RunResult | None = None
    if llmtap is not None and llmtap.ok and llmtap.proc:
        await set_pacing(ctx.upstream, latency_ms=50)
        proc = llmtap.proc
        stop = asyncio.Event()

        async def sample() -> None:
            t0 = time.monotonic()
            while not stop.is_set():
                soak.append((time.monotonic() - t0, proc.rss_mb()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2.0)

        sampler = asyncio.create_task(sample())
        try:
            soak_res = await open_loop(
                openai_target(llmtap),
                ctx.plan.e5_soak_rate,
                ctx.plan.e5_soak_s,
                timeout_s=ctx.plan.timeout_s,
            )
        finally:
            stop.set()
            await sampler
        ctx.save_raw("e5_soak_llmtap", soak_res)
        ctx.note_limited("E5 soak llmtap", soak_res)
    # The first fifth warms caches and pools; growth is read from the rest.
    steady = soak[len(soak) // 5 :]
    slope = slope_per_minute(steady)
    noise = _slope_noise(steady)
    rows = []
    for name in armlib.ARM_NAMES:
        one = ctx.arms.get(name)
        if one is None or name == "direct":
            continue
        if not one.ok:
            rows.append([name, f"not run: {one.not_run}", "", "", ""])
            continue
        rows.append(
            [
                name,
                f"{one.idle_rss_mb:.1f}" if one.idle_rss_mb else "n/a",
                f"{ctx.load_rss_mb[name]:.1f}" if name in ctx.load_rss_mb else "n/a",
                spread(starts.get(name, [])).fmt(2),
                str(len(starts.get(name, []))),
            ]
        )
    sec.table(["arm", "RSS idle MB", "RSS max under E2 load MB", "start→healthy s", "starts"], rows)
    if soak:
        sec.para(
            f"Soak: llmtap at {ctx.plan.e5_soak_rate:.0f} RPS (L = 50 ms) for"
            f" {ctx.plan.e5_soak_s:.0f} s, RSS sampled every 2 s: {soak[0][1]:.1f} → {soak[-1][1]:.1f}"
            f" MB, steady-state slope {slope:+.2f} MB/min (noise ±{noise:.2f} MB/min = 2 standard"
            f" errors), errors {soak_res.errors if soak_res else 'n/a'}."
        )
    ctx.sections.append(sec)
    idle = {n: [a.idle_rss_mb] for n, a in ctx.arms.items() if a.ok and a.idle_rss_mb}
    ctx.headline.append(value_row("E5 RSS idle (MB)", idle, ratio_cols=("floor", "litellm")))
    loaded = {n: [v] for n, v in ctx.load_rss_mb.items()}
    ctx.headline.append(
        value_row("E5 RSS max under E2 load (MB)", loaded, ratio_cols=("floor", "litellm"))
    )
    growth_ok = "n/a"
    if not math.isnan(slope):
        growth_ok = "met" if slope <= max(noise, 0.5) else "MISSED"
    ctx.headline.append(
        Headline(
            f"E5 RSS growth, {ctx.plan.e5_soak_s:.0f} s soak (MB/min)",
            {"llmtap": f"{slope:+.2f} ±{noise:.2f}" if soak else "not run"},
            "0 within noise",
            growth_ok,
        )
    )
    if growth_ok == "MISSED":
        ctx.misses.append(("E5 RSS growth", "nonstream"))

    def start_check(sp: dict[str, Spread]) -> str:
        v = sp.get("llmtap")
        return verdict(v, at_most=2.0) if v else "n/a"

    row = value_row(
        "E5 start → healthy (s)",
        starts,
        target="llmtap < 2 s",
        check=start_check,
        digits=2,
        ratio_cols=("floor", "litellm"),
    )
    ctx.headline.append(row)
    if row.verdict == "MISSED":
        ctx.misses.append((row.metric, "startup"))


def _slope_noise(samples: list[tuple[float, float]]) -> float:
    """Two standard errors of the least-squares slope, per minute."""
    n = len(samples)
    if n < 3:
        return NAN
    xs = [s[0] for s in samples]
    ys = [s[1] for s in samples]
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return NAN
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    resid = sum((y - (my + b * (x - mx))) ** 2 for x, y in zip(xs, ys, strict=True))
    return 2 * math.sqrt(resid / (n - 2) / sxx) * 60


# --------------------------------------------------------------------------- MITM


async def _mitm_load(ctx: Ctx, url: str, proxy: str, cafile: Path, *, stream: bool) -> RunResult:
    sslctx = ssl.create_default_context(cafile=str(cafile))
    body = {"model": "bench", "messages": CHAT_MESSAGES, "max_tokens": 32, "stream": stream}
    target = Target(
        url + "/v1/chat/completions",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "Authorization": "Bearer sk-bench-x"},
        stream=stream,
        proxy=proxy,
        ssl=sslctx,
    )
    if stream:
        return await closed_loop(target, ctx.plan.mitm_streams, timeout_s=ctx.plan.timeout_s)
    return await closed_loop(
        target,
        100_000,
        concurrency=ctx.plan.mitm_concurrency,
        duration_s=ctx.plan.mitm_duration_s,
        timeout_s=ctx.plan.timeout_s,
    )


async def _wait_file(path_glob: tuple[Path, str], proc: Proc, timeout_s: float = 30) -> Path:
    folder, pattern = path_glob
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = sorted(folder.glob(pattern)) if folder.exists() else []
        if found:
            return found[0]
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited: {proc.tail(5)}")
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{proc.name}: no {pattern} in {folder}")


async def _start_bare_mitm(ctx: Ctx, ca: Path, name: str, *opts: str) -> tuple[Proc, str, Path]:
    port = armlib.free_port()
    confdir = ctx.workdir / f"{name}-conf"
    argv = [
        str(armlib.VENV_BIN / "mitmdump"), "--mode", "regular", "--listen-host", "127.0.0.1",
        "--listen-port", str(port), "--set", f"confdir={confdir}",
        "--set", f"ssl_verify_upstream_trusted_ca={ca}", "--set", "flow_detail=0", "-q",
        *opts,
    ]  # fmt: skip
    proc = armlib.spawn(name, armlib.pinned(armlib.ROUTER_CORE, argv), ctx.workdir)
    cafile = await _wait_file((confdir, "mitmproxy-ca-cert.pem"), proc)
    await armlib._wait_port(proc, port)
    return proc, f"http://127.0.0.1:{port}", cafile


async def _start_llmtap_mitm(ctx: Ctx, ca: Path, tls_upstream: str) -> tuple[Arm, str, Path]:
    port = armlib.free_port()
    arm = await armlib.start_llmtap(
        ctx.upstream,
        ctx.workdir,
        name="llmtap-mitm",
        env={"LLMTAP_PROXY_PORT": str(port)},
        extra_args=["--proxy-port", str(port), "--upstream-ca", str(ca)],
    )
    if not arm.ok or arm.proc is None:
        raise RuntimeError(arm.not_run or "llmtap did not start")
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            arm.base + "/api/tools/traffic-inspector/capture-modes/http-proxy",
            json={"action": "start"},
        ) as r,
    ):
        if r.status >= 300:
            text = await r.text()
            arm.proc.stop()
            raise RuntimeError(f"http-proxy start answered {r.status}: {text[:200]}")
    await armlib._wait_port(arm.proc, port)
    data_dir = _llmtap_data_dir(arm)
    cafile = await _wait_file((data_dir / "ca", "*-ca-cert.pem"), arm.proc)
    return arm, f"http://127.0.0.1:{port}", cafile


def _llmtap_data_dir(arm: Arm) -> Path:
    assert arm.proc is not None
    argv = arm.proc.popen.args
    assert isinstance(argv, list)
    return Path(str(argv[argv.index("--data-dir") + 1]))


async def mitm(ctx: Ctx) -> None:
    """HTTPS keep-alive load through bare mitmproxy vs llmtap's http-proxy mode; SSE TTFT."""
    from bench.tlsgen import make_ca_and_leaf

    sec = Section("MITM — bare mitmproxy vs llmtap http-proxy mode (HTTPS, keep-alive)")
    ca, leaf, key = make_ca_and_leaf(ctx.workdir / "tls")
    up_proc, tls_url = await armlib.start_upstream(ctx.workdir, tls=(leaf, key))
    procs: list[Proc] = [up_proc]
    lanes: dict[str, tuple[str, Path]] = {}
    reasons: dict[str, str] = {}
    try:
        await set_pacing_tls(tls_url, ca, latency_ms=0, t0_ms=20, chunks=20, interval_ms=5)
        bare, bare_url, bare_ca = await _start_bare_mitm(ctx, ca, "mitmdump-bare")
        procs.append(bare)
        lanes["bare mitmproxy"] = (bare_url, bare_ca)
        # Bare mitmproxy buffers every body unless told to stream; the SSE lane needs the
        # streaming variant to be a fair first-token comparison.
        bare_s, bare_s_url, bare_s_ca = await _start_bare_mitm(
            ctx, ca, "mitmdump-stream", "--set", "stream_large_bodies=1"
        )
        procs.append(bare_s)
        llmtap_mitm: Arm | None = None
        try:
            llmtap_mitm, lurl, lca = await _start_llmtap_mitm(ctx, ca, tls_url)
            if llmtap_mitm.proc:
                procs.append(llmtap_mitm.proc)
            lanes["llmtap http-proxy"] = (lurl, lca)
        except (RuntimeError, aiohttp.ClientError, OSError) as exc:
            reasons["llmtap http-proxy"] = f"not run: {exc}"
        rps: dict[str, list[float]] = {}
        errs: dict[str, int] = {}
        ttft: dict[str, list[float]] = {}
        for rnd in range(ctx.plan.mitm_rounds):
            names = list(lanes)
            names = names[rnd % len(names) :] + names[: rnd % len(names)]
            for name in names:
                url, cafile = lanes[name]
                await _mitm_load(ctx, tls_url, url, cafile, stream=False)  # warm tunnels
                res = await _mitm_load(ctx, tls_url, url, cafile, stream=False)
                ctx.save_raw(f"mitm_{name.split()[0]}", res)
                rps.setdefault(name, []).append(res.achieved_rps)
                errs[name] = errs.get(name, 0) + res.errors
                s_url, s_ca = (bare_s_url, bare_s_ca) if name == "bare mitmproxy" else (url, cafile)
                sres = await _mitm_load(ctx, tls_url, s_url, s_ca, stream=True)
                ctx.save_raw(f"mitm_sse_{name.split()[0]}", sres)
                ttft.setdefault(name, []).append(sres.pct("first_content_ms", 50))
                errs[name] += sres.errors
        rows = [[n, spread(rps[n]).fmt(0), spread(ttft[n]).fmt(2), str(errs[n])] for n in rps] + [
            [n, r, "", ""] for n, r in reasons.items()
        ]
        sec.para(
            f"{ctx.plan.mitm_concurrency} keep-alive HTTPS connections (CONNECT through the proxy,"
            f" client trusts the proxy's CA, proxy trusts a throwaway upstream CA) for"
            f" {ctx.plan.mitm_duration_s:.0f} s per round, {ctx.plan.mitm_rounds} rounds; then"
            f" {ctx.plan.mitm_streams} sequential SSE streams (T0 = 20 ms) for first-content time."
            " Bare mitmproxy: `mitmdump` regular mode, no addons of ours (throughput with default"
            " options; SSE through a second instance with `stream_large_bodies=1`, since by"
            " default it buffers whole responses)."
        )
        sec.table(["proxy", "throughput RPS", "SSE first content p50 ms", "errors"], rows)
        ratio_cells: dict[str, str] = {}
        verdict_text = "not run" if reasons else "n/a"
        if "llmtap http-proxy" in rps and "bare mitmproxy" in rps:
            r = spread(ratios(rps["llmtap http-proxy"], rps["bare mitmproxy"]))
            ratio_cells["llmtap-mitm/bare"] = r.fmt(2, "x")
            verdict_text = verdict(r, at_least=0.85)
            t = spread(added(ttft["llmtap http-proxy"], ttft["bare mitmproxy"]))
            sec.para(f"llmtap http-proxy adds {t.fmt(2, ' ms')} to SSE first content over bare.")
        ctx.extra["mitm"] = {"rps": rps, "ttft": ttft, "reasons": reasons}
        ctx.extra["mitm_ratio"] = ratio_cells.get("llmtap-mitm/bare", "not run")
        row = Headline(
            "MITM throughput, llmtap-mitm/bare-mitmproxy",
            {
                "llmtap": spread(rps.get("llmtap http-proxy", [])).fmt(0)
                if "llmtap http-proxy" in rps
                else reasons.get("llmtap http-proxy", "n/a"),
                "llmtap/direct": "bare: " + spread(rps.get("bare mitmproxy", [])).fmt(0),
                "llmtap/floor": ratio_cells.get("llmtap-mitm/bare", ""),
            },
            "≥ 0.85x bare",
            verdict_text,
        )
        ctx.headline.append(row)
        if verdict_text == "MISSED":
            ctx.misses.append((row.metric, "mitm"))
            if llmtap_mitm is not None and llmtap_mitm.proc is not None:
                url, cafile = lanes["llmtap http-proxy"]
                load = asyncio.create_task(_mitm_load(ctx, tls_url, url, cafile, stream=False))
                await asyncio.sleep(0.3)
                ctx.profiles["mitm"] = await asyncio.to_thread(
                    profile_pid,
                    llmtap_mitm.proc.pid,
                    min(ctx.plan.profile_s, ctx.plan.mitm_duration_s),
                    ctx.workdir / "pyspy-mitm.txt",
                )
                ctx.profiles["mitm"].label = "llmtap http-proxy mode under the HTTPS load (py-spy)"
                await load
    finally:
        for p in procs:
            p.stop()
        ctx.sections.append(sec)


async def set_pacing_tls(url: str, ca: Path, **pacing: float) -> None:
    sslctx = ssl.create_default_context(cafile=str(ca))
    async with (
        aiohttp.ClientSession() as s,
        s.post(url + "/_bench/config", json=pacing, ssl=sslctx) as r,
    ):
        r.raise_for_status()


# --------------------------------------------------------------------------- inspector


async def inspector(ctx: Ctx) -> None:
    """RSS of a LiveBuffer holding 10k records of 8 KiB bodies; HAR export time of them."""
    sec = Section("Inspector — 10k records of 8 KiB bodies")
    argv = [
        sys.executable, "-m", "bench.inspector", "--records", "10000", "--body-kib", "8",
        "--budget-s", str(ctx.plan.inspector_budget_s),
    ]  # fmt: skip
    out = await asyncio.to_thread(
        subprocess.run,
        armlib.pinned(armlib.ROUTER_CORE, argv),
        capture_output=True,
        text=True,
        cwd=armlib.ROOT,
        timeout=ctx.plan.inspector_budget_s * 4 + 120,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr else "failed")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    full = data["records"] >= data["target_records"]
    reached = (
        ""
        if full
        else f" (only {data['records']} records within the {ctx.plan.inspector_budget_s:.0f} s fill budget)"
    )
    sec.para(
        f"A LiveBuffer filled in its own process with {data['records']} records{reached}: RSS"
        f" {data['rss_mb']:.1f} MB ({data['buffer_mb']:.1f} MB over the {data['rss_base_mb']:.1f}"
        f" MB interpreter), fill {data['fill_s']:.2f} s ({data['fill_s'] / max(1, data['records']) * 1000:.2f}"
        f" ms/record), HAR build + json.dumps {data['har_s']:.2f} s for {data['har_entries']}"
        f" entries ({data['har_mb']:.1f} MB)."
    )
    ctx.sections.append(sec)
    ctx.extra["inspector"] = data
    rss = Spread(data["rss_mb"], data["rss_mb"], data["rss_mb"], 1)
    har = Spread(data["har_s"], data["har_s"], data["har_s"], 1)
    suffix = "" if full else f" @ {data['records']} records"
    rss_v = verdict(rss, at_most=250) if full else "n/a (10k not reached)"
    har_v = verdict(har, at_most=2.0) if full else ("MISSED" if data["har_s"] > 2 else "n/a")
    ctx.headline.append(
        Headline(
            f"Inspector RSS, 10k × 8 KiB (MB){suffix}", {"llmtap": rss.fmt(1)}, "< 250 MB", rss_v
        )
    )
    ctx.headline.append(
        Headline(
            f"Inspector HAR export, 10k records (s){suffix}", {"llmtap": har.fmt(2)}, "< 2 s", har_v
        )
    )
    if "MISSED" in (rss_v, har_v) or not full:
        ctx.misses.append(("Inspector fill / HAR export", "inspector"))


# --------------------------------------------------------------------------- profiles


async def profile_misses(ctx: Ctx) -> None:
    """Profile llmtap (py-spy) for each kind of missed target, under the load that missed it."""
    kinds = sorted({kind for _, kind in ctx.misses})
    llmtap = ctx.arms.get("llmtap")
    for kind in kinds:
        if kind in ctx.profiles:
            continue
        if kind == "inspector":
            ctx.profiles[kind] = await asyncio.to_thread(profile_inspector, ctx)
            continue
        if kind == "startup":
            ctx.profiles[kind] = await profile_startup(ctx)
            continue
        if llmtap is None or not llmtap.ok or llmtap.proc is None:
            continue
        if kind == "stream":
            await set_pacing(ctx.upstream, latency_ms=0, t0_ms=20, chunks=ctx.plan.e4_chunks)
            target = openai_target(llmtap, stream=True)
            rate = 20.0
        elif kind == "nonstream":
            await set_pacing(ctx.upstream, latency_ms=0, t0_ms=0)
            target = openai_target(llmtap)
            rate = 150.0
        else:
            continue
        load = asyncio.create_task(
            open_loop(target, rate, ctx.plan.profile_s + 2, timeout_s=ctx.plan.timeout_s)
        )
        await asyncio.sleep(0.5)
        ctx.profiles[kind] = await asyncio.to_thread(
            profile_pid, llmtap.proc.pid, ctx.plan.profile_s, ctx.workdir / f"pyspy-{kind}.txt"
        )
        await load


def profile_inspector(ctx: Ctx) -> Profile:
    out = ctx.workdir / "pyspy-inspector.txt"
    argv = [
        str(armlib.VENV_BIN / "py-spy"), "record", "-r", "200", "-f", "raw", "-o", str(out),
        "--", sys.executable, "-m", "bench.inspector", "--records", "150", "--body-kib", "8",
    ]  # fmt: skip
    if not shutil.which(argv[0]):
        return Profile.missing("py-spy not installed")
    subprocess.run(argv, capture_output=True, cwd=armlib.ROOT, timeout=300, check=False)
    return Profile.from_raw(out, "LiveBuffer.add + build_har, 150 records (py-spy)")


async def profile_startup(ctx: Ctx) -> Profile:
    """py-spy attached to a fresh ``llmtap up`` from its first moment until healthy."""
    port = armlib.free_port()
    data_dir = ctx.workdir / "startup-profile"
    argv = armlib.llmtap_argv(port, ctx.upstream, data_dir)
    proc = armlib.spawn("llmtap-startup", armlib.pinned(armlib.ROUTER_CORE, argv), ctx.workdir)
    out = ctx.workdir / "pyspy-startup.txt"
    try:
        task = asyncio.create_task(
            asyncio.to_thread(profile_pid, proc.pid, ctx.plan.profile_s + 2, out)
        )
        with contextlib.suppress(RuntimeError):
            await armlib.wait_healthy(proc, f"http://127.0.0.1:{port}/v1", 30)
        prof = await task
        prof.label = "a fresh `llmtap up` from spawn until healthy and a little after (py-spy)"
        return prof
    finally:
        proc.stop()
