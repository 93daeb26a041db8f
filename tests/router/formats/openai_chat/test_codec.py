"""The openai_chat codec facade end to end."""

from __future__ import annotations

from typing import Any

import openai

from router.formats.openai_chat.codec import CODEC
from tests.router.formats.codec_server import serve_codec
from tests.router.formats.openai_chat.samples import (
    sample_response,
)


async def test_openai_sdk_reads_rendered_json_and_stream(aiohttp_server: Any) -> None:
    resp = sample_response()

    server = await serve_codec(aiohttp_server, CODEC, "/v1/chat/completions", resp)
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
