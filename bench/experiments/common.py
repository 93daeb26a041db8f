"""Shared by every experiment: the plan (quick/full budgets), the run context, request targets, report rows and the failure guard."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.arms import Arm, Proc
from bench.driver import RunResult, Target
from bench.profile import Profile
from bench.report import Headline, Section, verdict
from bench.stats import Spread, added, ratios, spread

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

    def add(self, row: Headline, profile: str | None = None) -> Headline:
        """Put ``row`` in the side-by-side table; a MISSED row names the ``profile`` that
        explains it (profiled after the experiments)."""
        self.headline.append(row)
        if profile is not None and row.verdict == "MISSED":
            self.misses.append((row.metric, profile))
        return row

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


def at_most(limit: float, column: str = "llmtap") -> Callable[[dict[str, Spread]], str]:
    """A row check: ``column`` (llmtap's own cell by default, or a ratio such as
    ``llmtap/floor``) at most ``limit``; ``n/a`` when the row has no such cell."""

    def check(sp: dict[str, Spread]) -> str:
        value = sp.get(column)
        return verdict(value, at_most=limit) if value is not None else "n/a"

    return check


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
