"""Deterministic work per request: Python function calls on the server's event-loop thread.

``python -m bench.callcount [--arm llmtap|floor] [--stream] [--n 40] [--top 25]`` starts the
bench's fake upstream in its own process, serves the arm in this process (llmtap: the same
runtime and app as ``llmtap up``, minus mitmproxy; floor: ``bench/floor.py``), sends ``n``
keep-alive requests from a client thread and counts, with ``sys.setprofile`` on the loop
thread only (the client, the upstream and the call-log writer thread are not counted), every
Python call from the moment a request is sent until the server has gone idle after it (the
inspector record and call-log row included). Each call is attributed to its innermost frame
in llmtap's own code (``router/``, ``web/``, ``addons/``), else to the library it ran in.

Timings on a shared machine are noise; these counts are not, so they are what a change to the
hot path is judged by (bench/analysis.md).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from bench.arms import free_port

ROOT = Path(__file__).resolve().parent.parent
_OURS = tuple(str(ROOT / part) + os.sep for part in ("router", "web", "addons"))
_IDLE_S = 0.05  # the server is idle this long after the reply: the record is built by then


def _outer(frame: FrameType | None) -> str:
    """The outermost llmtap frame on the stack (the entry point the call runs under)."""
    found = "[outside llmtap]"
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(_OURS):
            rel = name[len(str(ROOT)) + 1 : -3].replace(os.sep, ".")
            found = f"{rel}.{frame.f_code.co_qualname}"
        frame = frame.f_back
    return found


def _inclusive(frame: FrameType | None) -> set[str]:
    """Every llmtap function on the stack (each counts the call as inside it)."""
    out = set()
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(_OURS):
            rel = name[len(str(ROOT)) + 1 : -3].replace(os.sep, ".")
            out.add(f"{rel}.{frame.f_code.co_qualname}")
        frame = frame.f_back
    return out


def _owner(frame: FrameType | None) -> str:
    lib = None
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(_OURS):
            rel = name[len(str(ROOT)) + 1 : -3].replace(os.sep, ".")
            return f"{rel}.{frame.f_code.co_name}"
        if lib is None:
            parts = name.split(os.sep)
            lib = next(
                (p for p in reversed(parts[:-1]) if p in ("aiohttp", "asyncio", "pydantic")),
                parts[-1],
            )
        frame = frame.f_back
    return f"[{lib}]"


class Counting:
    def __init__(self, under: str | None = None) -> None:
        self.under = under  # count by callee only the calls made inside this llmtap function
        self.active = False
        self.total = 0
        self.by_owner: Counter[str] = Counter()
        self.by_callee: Counter[str] = Counter()
        self.by_outer: Counter[str] = Counter()
        self.by_inclusive: Counter[str] = Counter()

    def profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if self.active and event in ("call", "c_call"):
            self.total += 1
            caller = frame if event == "c_call" else frame.f_back
            self.by_owner[_owner(caller)] += 1
            self.by_outer[_outer(caller)] += 1
            inside = _inclusive(caller)
            self.by_inclusive.update(inside)
            if self.under is not None and self.under not in inside:
                return
            if event == "c_call":
                self.by_callee[f"<c> {getattr(arg, '__qualname__', arg)}"] += 1
            else:
                code = frame.f_code
                where = code.co_filename.rsplit(os.sep, 2)
                self.by_callee[f"{'/'.join(where[-2:])}:{code.co_qualname}"] += 1


def _body(model: str, stream: bool) -> bytes:
    return json.dumps(
        {
            "model": model,
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "Say hello."},
            ],
            "stream": stream,
        }
    ).encode()


def _client(
    port: int, model: str, stream: bool, n: int, warm: int, counting: Counting, done: Any
) -> None:
    headers = {"Content-Type": "application/json", "Host": f"127.0.0.1:{port}"}

    def connect() -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    send_counted(connect, _body(model, stream), headers, n, warm, counting, done)


def send_counted(
    connect: Callable[[], http.client.HTTPConnection],
    body: bytes,
    headers: dict[str, str],
    n: int,
    warm: int,
    counting: Counting,
    done: Any,
) -> None:
    """``warm`` uncounted then ``n`` counted chat calls on one keep-alive connection (made by
    ``connect``), each counted from its send until the server has gone idle after it; ``done``
    is set at the end, whatever happened."""
    try:
        conn = connect()
        for i in range(warm + n):
            time.sleep(_IDLE_S)
            counting.active = i >= warm
            conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{resp.status}: {data[:300]!r}")
            time.sleep(_IDLE_S)
            counting.active = False
        conn.close()
    finally:
        done.set()


async def _serve_llmtap(upstream: str, data_dir: Path) -> tuple[int, Any]:
    from addons.compose import build_runtime
    from addons.webapp import WebApp
    from router.settings import build
    from web.app import create_app
    from web.runtime import parse_provider_spec

    # Counted, a call runs ~10x slower (the profile hook), past the 5 ms after which a running
    # call's in-flight record is due; nobody watches here, so none is built (as uncounted).
    runtime = await build_runtime(build(cli={"data_dir": data_dir, "port": 0}, env={}))
    runtime.ensure_provider(parse_provider_spec(f"openai={upstream}/v1,name=up"))
    webapp = WebApp(create_app(runtime), "127.0.0.1", 0)
    await webapp.running()
    assert webapp.bound_port is not None
    runtime.api_port = webapp.bound_port

    async def stop() -> None:
        await webapp.done()
        await runtime.close()

    return webapp.bound_port, stop


async def _serve_floor(upstream: str) -> tuple[int, Any]:
    from aiohttp import web

    from bench.floor import make_app

    runner = web.AppRunner(make_app(upstream), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return port, runner.cleanup


def _start_upstream() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [sys.executable, "-m", "bench.upstream", "--port", str(port)]
    proc = subprocess.Popen([*argv, "--chunks", "5", "--interval-ms", "0"], cwd=ROOT)
    for _ in range(200):  # bounded: 10 s
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/_bench/config")
            conn.getresponse().read()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}"


async def run(
    arm: str, upstream: str, stream: bool, n: int, warm: int, under: str | None = None
) -> Counting:
    with tempfile.TemporaryDirectory() as tmp:
        if arm == "llmtap":
            port, stop = await _serve_llmtap(upstream, Path(tmp))
            model = "up/bench"
        else:
            port, stop = await _serve_floor(upstream)
            model = "bench"
        counting = Counting(under)
        done = asyncio.Event()
        loop = asyncio.get_running_loop()

        class _Done:
            def set(self) -> None:
                loop.call_soon_threadsafe(done.set)

        thread = threading.Thread(
            target=_client, args=(port, model, stream, n, warm, counting, _Done())
        )
        sys.setprofile(counting.profile)
        thread.start()
        await done.wait()
        sys.setprofile(None)
        thread.join()
        await stop()
    return counting


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.callcount", description=__doc__)
    parser.add_argument("--arm", choices=("llmtap", "floor"), default="llmtap")
    parser.add_argument("--stream", action="store_true", help="a 5-chunk SSE stream")
    parser.add_argument("--n", type=int, default=40, help="counted requests")
    parser.add_argument("--warm", type=int, default=10, help="uncounted requests first")
    parser.add_argument("--top", type=int, default=30, help="owners to list")
    parser.add_argument(
        "--by",
        choices=("owner", "callee", "entry", "inclusive"),
        default="owner",
        help="attribute each call to its innermost llmtap frame (owner), to the function"
        " called (callee), to the outermost llmtap frame on the stack (entry), or to every"
        " llmtap frame on the stack (inclusive)",
    )
    parser.add_argument(
        "--under",
        metavar="FUNC",
        help="with --by callee: only the calls made inside this llmtap function (its dotted"
        " name as --by inclusive prints it)",
    )
    args = parser.parse_args(argv)
    proc, upstream = _start_upstream()
    try:
        counting = asyncio.run(run(args.arm, upstream, args.stream, args.n, args.warm, args.under))
    finally:
        proc.terminate()
        proc.wait(10)
    kind = "5-chunk stream" if args.stream else "whole reply"
    print(f"{args.arm}, {kind}: {counting.total / args.n:.0f} Python calls per request")
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
