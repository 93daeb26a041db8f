"""Team gateway: one ``llmtap up --gateway`` on SQLite vs two on one PostgreSQL, same run.

``python -m bench.experiments.gateway [--rounds N] [--seconds S] [--out docs/benchmarks.md]``
starts the bench's fake upstream, a throwaway PostgreSQL cluster (tests/fakes/postgres.py,
from the OS's PostgreSQL binaries), one gateway on its own SQLite file and two gateways
sharing the cluster, then per round (arm order rotated): added p50 latency at one request in
flight (versus calling the upstream directly) and closed-loop throughput at 16 requests in
flight (the PostgreSQL pair gets 8 each, the client alternating as a load balancer would).
With ``--out`` it replaces its own section of that Markdown file and leaves the rest alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.arms import Arm, start_llmtap, start_upstream
from bench.driver import Target, closed_loop
from bench.experiments.common import openai_target
from bench.stats import spread

TOKEN = "bench-gateway-management-token"
BEGIN = "<!-- gateway experiment: bench/experiments/gateway.py -->"
END = "<!-- /gateway experiment -->"
CONCURRENCY = 16


async def _added_p50(arm: Arm, direct: Arm, n: int) -> float:
    await closed_loop(openai_target(arm), 5)  # warm the pools
    res = await closed_loop(openai_target(arm), n)
    base = await closed_loop(openai_target(direct), n)
    return res.pct("total_ms", 50) - base.pct("total_ms", 50)


async def _throughput(arms: list[Arm], seconds: float) -> tuple[float, int]:
    per = CONCURRENCY // len(arms)
    targets: list[Target] = [openai_target(a) for a in arms]
    results = await asyncio.gather(
        *(closed_loop(t, 10**9, concurrency=per, duration_s=seconds) for t in targets)
    )
    return sum(r.achieved_rps for r in results), sum(r.errors for r in results)


async def run(rounds: int, seconds: float, n_latency: int) -> str:
    from tests.fakes.postgres import throwaway_cluster

    workdir = Path(tempfile.mkdtemp(prefix="llmtap-bench-gw-"))
    upstream_proc, upstream = await start_upstream(workdir)
    arms: list[Arm] = []
    try:
        with throwaway_cluster() as cluster:
            url = cluster.create_database("bench")
            env = {"LLMTAP_MANAGEMENT_TOKEN": TOKEN}
            direct = Arm("direct", upstream, model="bench")
            sqlite = await start_llmtap(
                upstream, workdir, env=env, name="sqlite-1", extra_args=["--gateway"]
            )
            arms.append(sqlite)
            pg: list[Arm] = []
            for i in (1, 2):  # one after the other: the first one creates the provider
                arm = await start_llmtap(
                    upstream, workdir, env=env, name=f"postgres-{i}",
                    extra_args=["--gateway", "--database-url", url],
                )  # fmt: skip
                arms.append(arm)
                pg.append(arm)
            broken = [f"{a.name}: {a.not_run}" for a in arms if not a.ok]
            if broken:
                return _section([f"not run: {'; '.join(broken)}"])
            lat: dict[str, list[float]] = {"sqlite": [], "postgres": []}
            rps: dict[str, list[float]] = {"sqlite": [], "postgres": []}
            errors = 0
            for rnd in range(rounds):
                order = ["sqlite", "postgres"] if rnd % 2 == 0 else ["postgres", "sqlite"]
                for name in order:
                    group = [sqlite] if name == "sqlite" else pg
                    lat[name].append(await _added_p50(group[0], direct, n_latency))
                    got, errs = await _throughput(group, seconds)
                    rps[name].append(got)
                    errors += errs
            ratio = [p / s for p, s in zip(rps["postgres"], rps["sqlite"], strict=True) if s]
            load = os.getloadavg()
            rows = [
                "| setup | added p50 @c=1 (ms) | throughput @c=16 (req/s) |",
                "|---|---|---|",
                f"| 1 gateway, SQLite | {spread(lat['sqlite']).fmt(2)} |"
                f" {spread(rps['sqlite']).fmt(0)} |",
                f"| 2 gateways, one PostgreSQL | {spread(lat['postgres']).fmt(2)} |"
                f" {spread(rps['postgres']).fmt(0)} |",
            ]
            notes = [
                f"{rounds} rounds, arm order alternated; per round {n_latency} sequential calls"
                f" for latency (minus the same count sent straight to the upstream) and"
                f" {seconds:g} s closed loop at {CONCURRENCY} in flight for throughput;"
                f" medians of round values (min–max). PostgreSQL pair / SQLite throughput:"
                f" {statistics.median(ratio):.2f}x. Errors: {errors}. Every process shares"
                f" this 2-core machine (routers on one core, upstream and driver on the"
                f" other; PostgreSQL unpinned), load average at the end"
                f" {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}: two instances on one core"
                " measure the shared-state overhead, not the scale-out a second host gives.",
            ]
            return _section([*rows, "", *notes])
    finally:
        for arm in arms:
            if arm.proc is not None:
                arm.proc.stop()
        upstream_proc.stop()


def _section(lines: list[str]) -> str:
    body = "\n".join(lines)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (
        f"{BEGIN}\n## Team gateway: SQLite vs two instances on PostgreSQL ({stamp})\n\n"
        f"{body}\n{END}\n"
    )


def write(section: str, out: Path) -> None:
    text = out.read_text() if out.exists() else ""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    out.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.experiments.gateway")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--latency-requests", type=int, default=60)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    section = asyncio.run(run(args.rounds, args.seconds, args.latency_requests))
    print(section)
    if args.out is not None:
        write(section, args.out)
    sys.exit(0 if "not run" not in section else 1)


if __name__ == "__main__":
    main()
