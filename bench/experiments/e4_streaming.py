"""E4: streaming, added time to first byte and first content, per-frame cost and gaps."""

from __future__ import annotations

from bench.arms import set_pacing
from bench.driver import closed_loop
from bench.experiments.common import (
    Ctx,
    anthropic_target,
    at_most,
    compare_row,
    openai_target,
)
from bench.report import Section
from bench.stats import spread

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
            targets = (
                ("added first content p50", first, 1.0, 2, frame_notes),
                ("added per frame", per_frame, 0.5, 3, None),
            )
            for metric, values, limit, digits, row_notes in targets:
                row = compare_row(
                    f"E4 {lane} {metric}",
                    values,
                    target=f"llmtap adds < {limit:g} ms",
                    check=at_most(limit),
                    digits=digits,
                    notes=row_notes,
                )
                ctx.add(row, "stream")
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
