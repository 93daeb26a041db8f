"""An aiohttp server that answers as a codec renders: the request parsed by the codec, the
reply (whole or streamed) rendered by it. The official SDKs read it in the facade tests."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from router import ir
from router.formats import Codec


async def serve_codec(aiohttp_server: Any, codec: Codec, path: str, resp: ir.Response) -> Any:
    """A started test server answering ``POST path`` with ``resp`` in the codec's format."""

    async def handler(request: web.Request) -> web.StreamResponse:
        req = codec.parse_request(await request.json())
        if not req.stream:
            return web.json_response(codec.render_response(resp, req))
        stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await stream.prepare(request)
        renderer = codec.stream_renderer(req)
        for event in ir.response_events(resp):
            await stream.write(renderer.render(event))
        await stream.write(renderer.finish())
        return stream

    app = web.Application()
    app.router.add_post(path, handler)
    return await aiohttp_server(app)
