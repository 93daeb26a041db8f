"""MITM: llmtap's capture addons against bare mitmproxy, intercepted HTTPS throughput."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from pathlib import Path

import aiohttp

from bench import arms as armlib
from bench.arms import Arm, Proc
from bench.driver import RunResult, Target, closed_loop
from bench.experiments.common import CHAT_MESSAGES, Ctx
from bench.profile import profile_pid
from bench.report import Headline, Section, verdict
from bench.stats import added, ratios, spread

# --------------------------------------------------------------------------- MITM


async def _mitm_load(ctx: Ctx, url: str, proxy: str, cafile: Path, *, stream: bool) -> RunResult:
    sslctx = ssl.create_default_context(cafile=str(cafile))
    body = {"model": "bench", "messages": CHAT_MESSAGES, "max_tokens": 32, "stream": stream}
    target = Target(
        url + "/v1/chat/completions",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "Authorization": "Bearer sk-bench-x"},
        stream=stream,
        proxy=proxy,
        ssl=sslctx,
    )
    if stream:
        return await closed_loop(target, ctx.plan.mitm_streams, timeout_s=ctx.plan.timeout_s)
    return await closed_loop(
        target,
        100_000,
        concurrency=ctx.plan.mitm_concurrency,
        duration_s=ctx.plan.mitm_duration_s,
        timeout_s=ctx.plan.timeout_s,
    )


async def _wait_file(path_glob: tuple[Path, str], proc: Proc, timeout_s: float = 30) -> Path:
    folder, pattern = path_glob
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = sorted(folder.glob(pattern)) if folder.exists() else []
        if found:
            return found[0]
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited: {proc.tail(5)}")
        await asyncio.sleep(0.05)
    raise RuntimeError(f"{proc.name}: no {pattern} in {folder}")


async def _start_bare_mitm(ctx: Ctx, ca: Path, name: str, *opts: str) -> tuple[Proc, str, Path]:
    port = armlib.free_port()
    confdir = ctx.workdir / f"{name}-conf"
    argv = [
        str(armlib.VENV_BIN / "mitmdump"), "--mode", "regular", "--listen-host", "127.0.0.1",
        "--listen-port", str(port), "--set", f"confdir={confdir}",
        "--set", f"ssl_verify_upstream_trusted_ca={ca}", "--set", "flow_detail=0", "-q",
        *opts,
    ]  # fmt: skip
    proc = armlib.spawn(name, armlib.pinned(armlib.ROUTER_CORE, argv), ctx.workdir)
    cafile = await _wait_file((confdir, "mitmproxy-ca-cert.pem"), proc)
    await armlib._wait_port(proc, port)
    return proc, f"http://127.0.0.1:{port}", cafile


async def _start_llmtap_mitm(ctx: Ctx, ca: Path, tls_upstream: str) -> tuple[Arm, str, Path]:
    port = armlib.free_port()
    arm = await armlib.start_llmtap(
        ctx.upstream,
        ctx.workdir,
        name="llmtap-mitm",
        env={"LLMTAP_PROXY_PORT": str(port)},
        extra_args=["--proxy-port", str(port), "--upstream-ca", str(ca)],
    )
    if not arm.ok or arm.proc is None:
        raise RuntimeError(arm.not_run or "llmtap did not start")
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            arm.base + "/api/tools/traffic-inspector/capture-modes/http-proxy",
            json={"action": "start"},
        ) as r,
    ):
        if r.status >= 300:
            text = await r.text()
            arm.proc.stop()
            raise RuntimeError(f"http-proxy start answered {r.status}: {text[:200]}")
    await armlib._wait_port(arm.proc, port)
    data_dir = _llmtap_data_dir(arm)
    cafile = await _wait_file((data_dir / "ca", "*-ca-cert.pem"), arm.proc)
    return arm, f"http://127.0.0.1:{port}", cafile


def _llmtap_data_dir(arm: Arm) -> Path:
    assert arm.proc is not None
    argv = arm.proc.popen.args
    assert isinstance(argv, list)
    return Path(str(argv[argv.index("--data-dir") + 1]))


async def mitm(ctx: Ctx) -> None:
    """HTTPS keep-alive load through bare mitmproxy vs llmtap's http-proxy mode; SSE TTFT."""
    from bench.tlsgen import make_ca_and_leaf

    sec = Section("MITM — bare mitmproxy vs llmtap http-proxy mode (HTTPS, keep-alive)")
    ca, leaf, key = make_ca_and_leaf(ctx.workdir / "tls")
    up_proc, tls_url = await armlib.start_upstream(ctx.workdir, tls=(leaf, key))
    procs: list[Proc] = [up_proc]
    lanes: dict[str, tuple[str, Path]] = {}
    reasons: dict[str, str] = {}
    try:
        await set_pacing_tls(tls_url, ca, latency_ms=0, t0_ms=20, chunks=20, interval_ms=5)
        bare, bare_url, bare_ca = await _start_bare_mitm(ctx, ca, "mitmdump-bare")
        procs.append(bare)
        lanes["bare mitmproxy"] = (bare_url, bare_ca)
        # Bare mitmproxy buffers every body unless told to stream; the SSE lane needs the
        # streaming variant to be a fair first-token comparison.
        bare_s, bare_s_url, bare_s_ca = await _start_bare_mitm(
            ctx, ca, "mitmdump-stream", "--set", "stream_large_bodies=1"
        )
        procs.append(bare_s)
        llmtap_mitm: Arm | None = None
        try:
            llmtap_mitm, lurl, lca = await _start_llmtap_mitm(ctx, ca, tls_url)
            if llmtap_mitm.proc:
                procs.append(llmtap_mitm.proc)
            lanes["llmtap http-proxy"] = (lurl, lca)
        except (RuntimeError, aiohttp.ClientError, OSError) as exc:
            reasons["llmtap http-proxy"] = f"not run: {exc}"
        rps: dict[str, list[float]] = {}
        errs: dict[str, int] = {}
        ttft: dict[str, list[float]] = {}
        for rnd in range(ctx.plan.mitm_rounds):
            names = list(lanes)
            names = names[rnd % len(names) :] + names[: rnd % len(names)]
            for name in names:
                url, cafile = lanes[name]
                await _mitm_load(ctx, tls_url, url, cafile, stream=False)  # warm tunnels
                res = await _mitm_load(ctx, tls_url, url, cafile, stream=False)
                ctx.save_raw(f"mitm_{name.split()[0]}", res)
                rps.setdefault(name, []).append(res.achieved_rps)
                errs[name] = errs.get(name, 0) + res.errors
                s_url, s_ca = (bare_s_url, bare_s_ca) if name == "bare mitmproxy" else (url, cafile)
                sres = await _mitm_load(ctx, tls_url, s_url, s_ca, stream=True)
                ctx.save_raw(f"mitm_sse_{name.split()[0]}", sres)
                ttft.setdefault(name, []).append(sres.pct("first_content_ms", 50))
                errs[name] += sres.errors
        rows = [[n, spread(rps[n]).fmt(0), spread(ttft[n]).fmt(2), str(errs[n])] for n in rps] + [
            [n, r, "", ""] for n, r in reasons.items()
        ]
        sec.para(
            f"{ctx.plan.mitm_concurrency} keep-alive HTTPS connections (CONNECT through the proxy,"
            f" client trusts the proxy's CA, proxy trusts a throwaway upstream CA) for"
            f" {ctx.plan.mitm_duration_s:.0f} s per round, {ctx.plan.mitm_rounds} rounds; then"
            f" {ctx.plan.mitm_streams} sequential SSE streams (T0 = 20 ms) for first-content time."
            " Bare mitmproxy: `mitmdump` regular mode, no addons of ours (throughput with default"
            " options; SSE through a second instance with `stream_large_bodies=1`, since by"
            " default it buffers whole responses)."
        )
        sec.table(["proxy", "throughput RPS", "SSE first content p50 ms", "errors"], rows)
        ratio_cells: dict[str, str] = {}
        verdict_text = "not run" if reasons else "n/a"
        if "llmtap http-proxy" in rps and "bare mitmproxy" in rps:
            r = spread(ratios(rps["llmtap http-proxy"], rps["bare mitmproxy"]))
            ratio_cells["llmtap-mitm/bare"] = r.fmt(2, "x")
            verdict_text = verdict(r, at_least=0.9)
            t = spread(added(ttft["llmtap http-proxy"], ttft["bare mitmproxy"]))
            sec.para(f"llmtap http-proxy adds {t.fmt(2, ' ms')} to SSE first content over bare.")
        ctx.extra["mitm"] = {"rps": rps, "ttft": ttft, "reasons": reasons}
        ctx.extra["mitm_ratio"] = ratio_cells.get("llmtap-mitm/bare", "not run")
        row = Headline(
            "MITM throughput, llmtap-mitm/bare-mitmproxy",
            {
                "llmtap": spread(rps.get("llmtap http-proxy", [])).fmt(0)
                if "llmtap http-proxy" in rps
                else reasons.get("llmtap http-proxy", "n/a"),
                "llmtap/direct": "bare: " + spread(rps.get("bare mitmproxy", [])).fmt(0),
                "llmtap/floor": ratio_cells.get("llmtap-mitm/bare", ""),
            },
            "≥ 0.9x bare",
            verdict_text,
        )
        ctx.headline.append(row)
        if verdict_text == "MISSED":
            ctx.misses.append((row.metric, "mitm"))
            if llmtap_mitm is not None and llmtap_mitm.proc is not None:
                url, cafile = lanes["llmtap http-proxy"]
                load = asyncio.create_task(_mitm_load(ctx, tls_url, url, cafile, stream=False))
                await asyncio.sleep(0.3)
                ctx.profiles["mitm"] = await asyncio.to_thread(
                    profile_pid,
                    llmtap_mitm.proc.pid,
                    min(ctx.plan.profile_s, ctx.plan.mitm_duration_s),
                    ctx.workdir / "pyspy-mitm.txt",
                )
                ctx.profiles["mitm"].label = "llmtap http-proxy mode under the HTTPS load (py-spy)"
                await load
    finally:
        for p in procs:
            p.stop()
        ctx.sections.append(sec)


async def set_pacing_tls(url: str, ca: Path, **pacing: float) -> None:
    sslctx = ssl.create_default_context(cafile=str(ca))
    async with (
        aiohttp.ClientSession() as s,
        s.post(url + "/_bench/config", json=pacing, ssl=sslctx) as r,
    ):
        r.raise_for_status()
