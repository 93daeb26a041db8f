"""E3: the throughput frontier, the highest rate each arm sustains under a p99 bound (wrk)."""

from __future__ import annotations

import asyncio
import json

from bench import wrk
from bench.arms import set_pacing
from bench.experiments.common import CHAT_MESSAGES, Ctx, openai_target, value_row
from bench.report import Section, verdict
from bench.stats import Spread, frontier

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

    def at_least_half_floor(sp: dict[str, Spread]) -> str:
        # Issue 11: >= 0.5x the floor's frontier (which is >= 15x LiteLLM's on this machine).
        flo = sp.get("llmtap/floor")
        if flo is None:
            return "n/a"
        return verdict(flo, at_least=0.5)

    for label, data in (("p99 < 10 ms", f10), ("p99 < 50 ms", f50)):
        row = value_row(
            f"E3 throughput frontier, {label} (RPS)",
            data,
            target="≥ 0.5x the floor (≥ 15x LiteLLM)",
            check=at_least_half_floor,
            digits=0,
        )
        ctx.add(row, "nonstream")
