"""Deterministic work per intercepted flow: calls on the proxy's event-loop thread for
one HTTPS LLM call through llmtap's http-proxy mode, against bare mitmproxy on the same load.

``python -m bench.mitmcount [--arm llmtap|bare] [--n 40] [--by owner|callee|entry]`` serves
the arm in this process (llmtap: the same Master, mitmproxy addons, our addons and web app as
``llmtap up`` with the HTTP proxy started; bare: mitmproxy's ``DumpMaster`` with its default
addons and ``flow_detail=0``, as ``mitmdump -q`` in bench/experiments/mitm.py), starts the
bench's fake upstream over TLS in its own process, and sends ``n`` keep-alive requests (one
CONNECT tunnel, the bench's chat body) from a client thread. Every call on the loop thread
(Python functions and C builtins) from the moment a request is sent until the proxy has gone
idle after it is counted (``sys.setprofile``), and attributed like bench/callcount.py does. Without ``--arm`` both
arms run, each in its own process (the llmtap arm must import mitmproxy its own way), and
the ratio is printed.

Wall times on a shared machine are noise; these counts are what the capture path is judged
by (bench/analysis.md, MITM).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.arms import free_port
from bench.callcount import ROOT, Counting, send_counted

_IDLE_S = 0.05
BODY = json.dumps(
    {
        "model": "bench",
        "messages": [{"role": "user", "content": "Say hello in five words."}],
        "max_tokens": 32,
        "stream": False,
    }
).encode()


def _start_upstream(tls: tuple[Path, Path]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.upstream", "--port", str(port), "--chunks", "5"]
    argv += ["--interval-ms", "0", "--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    proc = subprocess.Popen(argv, cwd=ROOT)
    _wait_port(port)
    return proc, port


def _wait_port(port: int) -> None:
    import socket

    for _ in range(400):  # bounded: 20 s
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def _client(
    proxy_port: int, cafile: Path, up_port: int, n: int, warm: int, counting: Counting, done: Any
) -> None:
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench-x"}

    def connect() -> http.client.HTTPConnection:
        ctx = ssl.create_default_context(cafile=str(cafile))
        conn = http.client.HTTPSConnection("127.0.0.1", proxy_port, timeout=30, context=ctx)
        conn.set_tunnel("127.0.0.1", up_port)
        return conn

    send_counted(connect, BODY, headers, n, warm, counting, done)


async def _llmtap(tmp: Path, ca: Path) -> tuple[int, Path, Any, Any]:
    from addons import mitm

    mitm.prepare()
    from mitmproxy import options
    from mitmproxy.master import Master

    from addons.compose import build_addons, build_runtime, mitm_options
    from addons.webapp import WebApp
    from router.settings import build
    from web.app import create_app

    proxy_port = free_port()
    settings = build(
        cli={"data_dir": tmp / "data", "port": 0, "proxy_port": proxy_port, "upstream_ca": ca},
        env={},
    )
    runtime = await build_runtime(settings)
    opts = options.Options()
    master = Master(opts, event_loop=asyncio.get_running_loop())
    master.addons.add(*mitm.addons())
    webapp = WebApp(create_app(runtime), "127.0.0.1", 0)
    master.addons.add(webapp, *build_addons(runtime, master))
    opts.update(**mitm_options(runtime))
    task = asyncio.get_running_loop().create_task(master.run())
    for _ in range(400):  # bounded: 20 s
        if webapp.bound_port is not None:
            break
        await asyncio.sleep(0.05)
    opts.update(llmtap_api_port=webapp.bound_port)
    await runtime.capture.http_proxy("start")
    cafile = next((tmp / "data" / "ca").glob("*-ca-cert.pem"))

    async def stop() -> None:
        master.shutdown()
        await task
        await runtime.close()

    return proxy_port, cafile, master, stop


async def _bare(tmp: Path, ca: Path) -> tuple[int, Path, Any, Any]:
    from mitmproxy import options
    from mitmproxy.tools.dump import DumpMaster

    proxy_port = free_port()
    opts = options.Options()
    master = DumpMaster(opts, loop=asyncio.get_running_loop())
    opts.update(
        mode=[f"regular@127.0.0.1:{proxy_port}"],
        confdir=str(tmp / "conf"),
        ssl_verify_upstream_trusted_ca=str(ca),
        flow_detail=0,
        termlog_verbosity="error",
    )
    task = asyncio.get_running_loop().create_task(master.run())
    cafile = tmp / "conf" / "mitmproxy-ca-cert.pem"
    for _ in range(400):  # bounded: 20 s
        if cafile.exists():
            break
        await asyncio.sleep(0.05)
    await asyncio.to_thread(_wait_port, proxy_port)

    async def stop() -> None:
        master.shutdown()
        await task

    return proxy_port, cafile, master, stop


async def run(arm: str, n: int, warm: int) -> Counting:
    from bench.tlsgen import make_ca_and_leaf

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        ca, leaf, key = make_ca_and_leaf(tmp / "tls")
        up, up_port = await asyncio.to_thread(_start_upstream, (leaf, key))
        try:
            serve = _llmtap if arm == "llmtap" else _bare
            proxy_port, cafile, _master, stop = await serve(tmp, ca)
            counting = Counting()
            done = asyncio.Event()
            loop = asyncio.get_running_loop()

            class _Done:
                def set(self) -> None:
                    loop.call_soon_threadsafe(done.set)

            thread = threading.Thread(
                target=_client,
                args=(proxy_port, cafile, up_port, n, warm, counting, _Done()),
            )
            sys.setprofile(counting.profile)
            thread.start()
            await done.wait()
            sys.setprofile(None)
            thread.join()
            await stop()
        finally:
            up.terminate()
            up.wait(10)
    return counting


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.mitmcount", description=__doc__)
    parser.add_argument("--arm", choices=("llmtap", "bare"))
    parser.add_argument("--n", type=int, default=40, help="counted requests")
    parser.add_argument("--warm", type=int, default=10, help="uncounted requests first")
    parser.add_argument("--top", type=int, default=30, help="rows to list")
    parser.add_argument("--by", choices=("owner", "callee", "entry", "inclusive"), default="owner")
    args = parser.parse_args(argv)
    if args.arm is None:
        totals = {}
        for arm in ("bare", "llmtap"):
            out = subprocess.run(
                [sys.executable, "-m", "bench.mitmcount", "--arm", arm, "--n", str(args.n),
                 "--warm", str(args.warm), "--top", "0"],
                cwd=ROOT, check=True, capture_output=True, text=True, timeout=600,
            ).stdout  # fmt: skip
            totals[arm] = float(out.split(":")[1].split()[0])
            print(out.strip())
        print(f"llmtap / bare: {totals['llmtap'] / totals['bare']:.2f}x the calls per flow")
        return
    counting = asyncio.run(run(args.arm, args.n, args.warm))
    print(f"{args.arm}: {counting.total / args.n:.0f} calls (Python and C) per intercepted flow")
    table = {
        "owner": counting.by_owner,
        "callee": counting.by_callee,
        "entry": counting.by_outer,
        "inclusive": counting.by_inclusive,
    }[args.by]
    for owner, count in table.most_common(args.top):
        print(f"{count / args.n:8.1f}  {owner}")


if __name__ == "__main__":
    main()
