"""Profiles: py-spy of llmtap under the load of each missed target."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys

from bench import arms as armlib
from bench.arms import set_pacing
from bench.driver import open_loop
from bench.experiments.common import Ctx, openai_target
from bench.profile import Profile, profile_pid

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
