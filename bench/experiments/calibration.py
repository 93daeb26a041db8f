"""Calibration: the fake upstream and the driver measured alone before any arm is judged."""

from __future__ import annotations

from bench.arms import set_pacing
from bench.driver import closed_loop, open_loop
from bench.experiments.common import Ctx, ms, openai_target
from bench.report import Section

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
