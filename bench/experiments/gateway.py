"""Team gateway: one ``llmtap up --gateway`` on SQLite vs two on one PostgreSQL, same run.

``python -m bench.experiments.gateway [--rounds N] [--seconds S] [--out docs/benchmarks.md]``
starts the bench's fake upstream, a throwaway PostgreSQL cluster (tests/fakes/postgres.py,
from the OS's PostgreSQL binaries), one gateway on its own SQLite file and two gateways
sharing the cluster, then per round (arm order rotated): added p50 latency at one request in
flight (versus calling the upstream directly) and closed-loop throughput at 16 requests in
flight (the PostgreSQL pair gets 8 each, the client alternating as a load balancer would).
It also times the store's per-request statements on that cluster with each PostgreSQL driver
peewee supports (psycopg 3, psycopg2-binary), in-process, rounds alternated.

With ``--out`` it replaces its own section of that Markdown file and leaves the rest alone.
In ``./scripts/bench`` (full mode, or ``--only gateway``) the same section goes into the
report; without PostgreSQL's server binaries it says "not run" and why.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.arms import Arm, start_llmtap, start_upstream
from bench.driver import Target, closed_loop
from bench.experiments.common import Ctx, openai_target
from bench.report import Section
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


# ----------------------------------------------------------------- psycopg 3 vs psycopg2

DRIVERS = (("psycopg 3", True), ("psycopg2", False))


def _driver_ops() -> dict[str, Callable[[], None]]:
    """The store's per-request operations on PostgreSQL, on whatever ``database`` is bound."""
    from datetime import UTC, datetime

    from router.store import calllogs, keys
    from router.store.advance import Turn
    from router.store.records import CallLog
    from router.store.shared import SharedLeases, SharedState

    _record, full = keys.create("bench-driver")
    state, leases, turn = SharedState(), SharedLeases(), Turn(3, (0, 1, 2), ())

    def key_check() -> None:
        keys.forget()  # the database read a key not yet in memory costs
        assert keys.verify(full) is not None

    def advance() -> None:
        state.advance("round-robin:bench-driver", turn)

    def lease() -> None:
        lease_id = leases.try_acquire("bench-driver", 10**6)
        assert lease_id is not None
        leases.release(lease_id)

    def batch() -> None:
        now = datetime.now(UTC)
        calllogs.insert_many(
            CallLog(id=os.urandom(16).hex(), timestamp=now, path="/v1/chat/completions",
                    requested_model="bench", status=200)
            for _ in range(50)
        )  # fmt: skip

    return {
        "key check (not in memory)": key_check,
        "strategy advance": advance,
        "lease acquire + release": lease,
        "call-log batch of 50 rows": batch,
    }


def measure_drivers(url: str, rounds: int, n: int) -> list[str]:
    """Markdown lines: per-operation time with each driver. Both drivers hold a connection
    to the same database and take turns every ``n`` operations (order alternated), so the
    machine's drift falls on both alike; cells are medians of those blocks (min–max)."""
    from router.store import db

    if importlib.util.find_spec("psycopg2") is None:
        return ["psycopg2 vs psycopg 3: not run: psycopg2-binary is not installed"
                " (`pip install psycopg2-binary`)."]  # fmt: skip
    db.open_database(url)  # migrated once, with the default driver
    db.close_database()
    handles = {name: db.make_database(url, psycopg3=flag) for name, flag in DRIVERS}
    ops = _bind(handles[DRIVERS[0][0]], _driver_ops)
    times: dict[str, dict[str, list[float]]] = {name: {op: [] for op in ops} for name in handles}
    try:
        for op, fn in ops.items():
            count = n if "batch" not in op else max(1, n // 10)
            for rnd in range(rounds):
                order = DRIVERS if rnd % 2 == 0 else DRIVERS[::-1]
                for name, _flag in order:
                    db.database.initialize(handles[name])
                    fn()  # warm: this driver's connection and prepared statements
                    t = time.perf_counter()
                    for _ in range(count):
                        fn()
                    times[name][op].append((time.perf_counter() - t) / count * 1e6)
    finally:
        for handle in handles.values():
            handle.close()
    rows = [
        "| operation | psycopg 3 (µs) | psycopg2 (µs) | psycopg2 / psycopg 3 |",
        "|---|---|---|---|",
    ]
    for op in ops:
        three, two = times["psycopg 3"][op], times["psycopg2"][op]
        ratio = statistics.median(b / a for a, b in zip(three, two, strict=True))
        rows.append(f"| {op} | {spread(three).fmt(0)} | {spread(two).fmt(0)} | {ratio:.2f}x |")
    return [
        *rows,
        "",
        f"peewee on the same cluster, in one process: per operation {rounds} blocks per driver"
        f" of {n} operations (batches: {max(1, n // 10)}), the drivers taking turns block by"
        " block; median of block means (min–max); above 1x psycopg 3 is faster. The store"
        " uses psycopg 3 (`router/store/db.py`): see docs/deploy.md.",
    ]


def _bind[T](handle: object, make: Callable[[], T]) -> T:
    from router.store import db

    db.database.initialize(handle)
    return make()


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
            drivers = await asyncio.to_thread(
                measure_drivers, cluster.create_database("drivers"), 12, 100
            )
            return _section([*rows, "", *notes, "", *drivers])
    finally:
        for arm in arms:
            if arm.proc is not None:
                arm.proc.stop()
        upstream_proc.stop()


def _section(lines: list[str]) -> str:
    body = "\n".join(lines)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (
        f"{BEGIN}\n**Team gateway: SQLite vs two instances on PostgreSQL** (measured {stamp};"
        f" `python -m bench.experiments.gateway`, or `./scripts/bench` in full mode)\n\n"
        f"{body}\n{END}\n"
    )


def not_run_reason() -> str | None:
    """Why the experiment cannot run on this machine, or None."""
    from tests.fakes.postgres import find_bindir

    if importlib.util.find_spec("psycopg") is None:
        return "psycopg is not installed (pip install 'llmtap[postgres]')"
    if find_bindir() is None:
        return "no PostgreSQL server binaries (initdb) on this machine (scripts/postgres installs them)"
    return None


async def gateway(ctx: Ctx) -> None:
    """The ``./scripts/bench`` step: full mode (or ``--only gateway``); a quick run leaves
    the last measured section in place (the report keeps marked sections it did not write)."""
    if ctx.plan.quick:
        return
    reason = not_run_reason()
    section = _section([f"not run: {reason}"]) if reason else await run(3, 4.0, 60)
    sec = Section("Team gateway")
    sec.lines += [*section.rstrip("\n").split("\n"), ""]
    ctx.sections.append(sec)


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
    reason = not_run_reason()
    section = (
        _section([f"not run: {reason}"])
        if reason
        else asyncio.run(run(args.rounds, args.seconds, args.latency_requests))
    )
    print(section)
    if args.out is not None:
        write(section, args.out)
    sys.exit(0 if "not run" not in section else 1)


if __name__ == "__main__":
    main()
