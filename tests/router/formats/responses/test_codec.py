"""The responses codec facade end to end."""

from __future__ import annotations

from typing import Any

import openai

from router.formats.responses.codec import CODEC
from tests.router.formats.codec_server import serve_codec
from tests.router.formats.responses.samples import (
    anthropic_response,
)


async def test_openai_sdk_reads_rendered_response_and_stream(aiohttp_server: Any) -> None:
    resp = anthropic_response()

    server = await serve_codec(aiohttp_server, CODEC, "/v1/responses", resp)
    client = openai.AsyncOpenAI(api_key="test", base_url=str(server.make_url("/v1")))

    result = await client.responses.create(model="m", input="hi")
    assert result.output_text == "I'll look."
    calls = [i for i in result.output if i.type == "function_call"]
    assert [c.call_id for c in calls] == ["toolu_a", "toolu_b"]

    stream = await client.responses.create(model="m", input="hi", stream=True)
    text, final = "", None
    async for event in stream:
        if event.type == "response.output_text.delta":
            text += event.delta
        if event.type == "response.completed":
            final = event.response
    assert text == "I'll look."
    assert final is not None and final.usage is not None and final.usage.input_tokens == 30

    async with client.responses.stream(model="m", input="hi") as managed:
        done = await managed.get_final_response()
    assert done.output_text == "I'll look."
    await client.close()
