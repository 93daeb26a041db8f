"""The openai_chat codec facade end to end."""

from __future__ import annotations

from typing import Any

import openai
from aiohttp import web

from router import ir
from router.formats.openai_chat.codec import CODEC
from tests.router.formats.openai_chat.samples import (
    sample_response,
)


async def test_openai_sdk_reads_rendered_json_and_stream(aiohttp_server: Any) -> None:
    resp = sample_response()

    async def handler(request: web.Request) -> web.StreamResponse:
        req = CODEC.parse_request(await request.json())
        if not req.stream:
            return web.json_response(CODEC.render_response(resp, req))
        stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await stream.prepare(request)
        renderer = CODEC.stream_renderer(req)
        for event in ir.response_events(resp):
            await stream.write(renderer.render(event))
        await stream.write(renderer.finish())
        return stream

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    server = await aiohttp_server(app)
    client = openai.AsyncOpenAI(api_key="test", base_url=str(server.make_url("/v1")))
    messages: Any = [{"role": "user", "content": "hi"}]
    completion = await client.chat.completions.create(model="m", messages=messages)
    assert completion.choices[0].finish_reason == "tool_calls"
    calls = completion.choices[0].message.tool_calls or []
    assert [c.id for c in calls] == ["toolu_a", "toolu_b"]

    stream = await client.chat.completions.create(
        model="m", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    text, usage = "", None
    async for part in stream:
        if part.choices and part.choices[0].delta.content:
            text += part.choices[0].delta.content
        usage = part.usage or usage
    assert text == "I'll look."
    assert usage is not None and usage.prompt_tokens == 30

    stream = await client.chat.completions.create(model="m", messages=messages, stream=True)
    seen = [part async for part in stream]
    assert all(p.usage is None for p in seen)
    await client.close()
