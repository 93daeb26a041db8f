"""E2: latency and router CPU per request at fixed arrival rates (open loop)."""

from __future__ import annotations

from typing import Any

from bench.arms import set_pacing
from bench.driver import closed_loop, open_loop
from bench.experiments.common import Ctx, compare_row, openai_target, value_row
from bench.report import Section, verdict
from bench.stats import added, spread

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
                target="≤ 1.5x the floor",
                check=lambda sp: (
                    verdict(sp["llmtap/floor"], at_most=1.5) if "llmtap/floor" in sp else "n/a"
                ),
            )
        )
    ctx.extra["e2_saturated"] = saturated
