"""E1: added latency at one request in flight (L=0 and L=20 ms), every arm side by side."""

from __future__ import annotations

from bench.arms import set_pacing
from bench.driver import closed_loop
from bench.experiments.common import Ctx, at_most, compare_row, openai_target
from bench.report import Section
from bench.stats import spread

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

        for pct, values, limit, row_notes in ((50, p50, 1.5, notes), (99, p99, 2.0, None)):
            row = compare_row(
                f"E1 p{pct} @c=1, L={latency} ms",
                values,
                target=f"≤ {limit:g}x the floor's added",
                check=at_most(limit, "llmtap/floor"),
                notes=row_notes,
            )
            ctx.add(row, "nonstream")
    sec.para(
        f"Closed loop, one request at a time, {ctx.plan.rounds} rounds; requests per arm per round:"
        f" {ctx.plan.e1_requests} (by L). Values: medians of round values (min–max), total"
        " latency in ms as the client saw it."
    )
    sec.table(["L ms", "arm", "p50 ms", "p99 ms", "errors"], rows)
    ctx.sections.append(sec)
