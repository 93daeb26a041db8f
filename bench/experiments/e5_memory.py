"""E5: memory (idle, under load, growth over a soak) and start to healthy."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time

from bench import arms as armlib
from bench.arms import set_pacing
from bench.driver import RunResult, open_loop
from bench.experiments.common import NAN, Ctx, at_most, openai_target, value_row
from bench.report import Headline, Section
from bench.stats import slope_per_minute, spread

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
    _soak_row(ctx, sec)

    row = value_row(
        "E5 start → healthy (s)",
        starts,
        target="llmtap < 1 s",
        check=at_most(1.0),
        digits=2,
        ratio_cols=("floor", "litellm"),
    )
    ctx.add(row, "startup")


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


def _soak_row(ctx: Ctx, sec: Section) -> None:
    """The long soak's row, from the last ``./scripts/bench --soak`` (bench/soak.json): 30
    minutes do not fit in this run, so the row says when and at which commit it was taken."""
    from bench.experiments.soak import load_result

    soak = load_result()
    metric = "E5 RSS growth, 30-min soak at 200 RPS through proxy + router (MB/min)"
    if soak is None:
        ctx.headline.append(Headline(metric, {"llmtap": "not run"}, "0 within noise", "n/a"))
        return
    rate_note = (
        f"{soak['achieved_rps']:.0f} RPS achieved of {soak['rate_rps']:.0f} offered"
        f" (load avg {soak['load_avg_1min']['median']:.1f})"
    )
    cell = (
        f"{soak['slope_mb_per_min']:+.3f} ±{soak['noise_mb_per_min']:.3f};"
        f" {soak['minutes']:.0f} min, {soak['requests']} requests, {soak['errors']} errors,"
        f" {rate_note}; {soak['when']}, `{soak['commit']}`"
    )
    ctx.headline.append(Headline(metric, {"llmtap": cell}, "0 within noise", soak["verdict"]))
    sec.para(
        f"Long soak (`./scripts/bench --soak`, {soak['when']}, commit `{soak['commit']}`):"
        f" {soak['path']}, {soak['workers']} requests in flight at most, for"
        f" {soak['minutes']:.0f} min: {soak['requests']} requests, {soak['errors']} errors,"
        f" {rate_note}, p50 {soak['p50_ms']:.1f} ms, p99 {soak['p99_ms']:.1f} ms. RSS"
        f" {soak['rss_start_mb']} → {soak['rss_end_mb']} MB (max {soak['rss_max_mb']}),"
        f" steady-state slope {soak['slope_mb_per_min']:+.3f} MB/min (noise"
        f" ±{soak['noise_mb_per_min']:.3f}), load average (1 min) median"
        f" {soak['load_avg_1min']['median']}, max {soak['load_avg_1min']['max']}."
        + (
            " The machine could not carry the offered rate while it ran; growth is per"
            " request, so the row holds at the rate achieved, and the rate itself says so."
            if soak["achieved_rps"] < 0.9 * soak["rate_rps"]
            else ""
        )
    )
