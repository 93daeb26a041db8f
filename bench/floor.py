"""The floor arm: the thinnest aiohttp pass-through proxy, the best a Python router can do.

It forwards method, path, body and the content-type to one upstream over a keep-alive
connection pool and streams the answer back chunk by chunk. No parsing, no translation, no
recording: whatever llmtap adds on top of this is the price of its features.
"""

from __future__ import annotations

import argparse

import aiohttp
from aiohttp import web

_FORWARD = ("Content-Type", "Authorization", "x-api-key", "anthropic-version", "Accept")
_DROP = {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}
SESSION = web.AppKey("session", aiohttp.ClientSession)


def make_app(upstream: str) -> web.Application:
    base = upstream.rstrip("/")

    async def start(app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
        app[SESSION] = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None)
        )

    async def stop(app: web.Application) -> None:
        await app[SESSION].close()

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: request.headers[k] for k in _FORWARD if k in request.headers}
        url = base + request.rel_url.path_qs
        async with request.app[SESSION].request(
            request.method, url, data=body, headers=headers
        ) as up:
            resp = web.StreamResponse(
                status=up.status,
                headers={k: v for k, v in up.headers.items() if k.lower() not in _DROP},
            )
            await resp.prepare(request)
            async for chunk in up.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
            return resp

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_get("/health", health)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:9000")
    args = parser.parse_args(argv)
    web.run_app(
        make_app(args.upstream),
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
