"""OpenAI Responses as the fake speaks it: usage, the JSON response and the typed SSE events
(reasoning summary, message text, function-call arguments)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from tests.fakes.upstream.reply import Usage, new_id, split_args
from tests.fakes.upstream.wire import Generation, sse_data


def usage(u: Usage) -> dict[str, Any]:
    inp, out, cache_read, cache_write, reasoning = u
    return {
        "input_tokens": inp,
        "input_tokens_details": {
            "cached_tokens": cache_read,
            "cache_write_tokens": cache_write,
        },
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": inp + out,
    }


async def serve(call: Generation) -> web.StreamResponse:
    up, request, reply, payload, model, stream = call
    rid = new_id("resp_")
    created = int(time.time())
    incomplete = reply.stop == "max_tokens"
    final_status = "incomplete" if incomplete else "completed"

    # Output items in their final form; the stream builds them up step by step.
    items: list[dict[str, Any]] = []
    if reply.reasoning is not None:
        items.append(
            {
                "id": new_id("rs_"),
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": reply.reasoning}],
                "encrypted_content": reply.signature,
            }
        )
    if reply.content is not None:
        items.append(
            {
                "id": new_id("msg_"),
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [
                    {
                        "type": "output_text",
                        "text": reply.content,
                        "annotations": [],
                        "logprobs": [],
                    }
                ],
            }
        )
    for tc in reply.tool_calls:
        items.append(
            {
                "id": new_id("fc_"),
                "type": "function_call",
                "status": "completed",
                "arguments": tc.arguments,
                "call_id": tc.id,
                "name": tc.name,
            }
        )

    def response(status: str, output: list[dict[str, Any]], with_usage: bool) -> dict[str, Any]:
        return {
            "id": rid,
            "object": "response",
            "created_at": created,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"}
            if incomplete and status == "incomplete"
            else None,
            "instructions": payload.get("instructions"),
            "max_output_tokens": payload.get("max_output_tokens"),
            "model": model,
            "output": output,
            "parallel_tool_calls": payload.get("parallel_tool_calls", True),
            "previous_response_id": payload.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "store": payload.get("store", True),
            "temperature": payload.get("temperature", 1.0),
            "text": {"format": {"type": "text"}},
            "tool_choice": payload.get("tool_choice", "auto"),
            "tools": payload.get("tools", []),
            "top_p": payload.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": usage(reply.usage5) if with_usage and not reply.no_usage else None,
            "user": None,
            "metadata": {},
        }

    headers = {"x-request-id": new_id("req_")}
    if not stream:
        return await up.send_json(reply, response(final_status, items, True), headers)

    seq = 0

    def ev(obj: dict[str, Any]) -> bytes:
        nonlocal seq
        obj["sequence_number"] = seq
        seq += 1
        return sse_data(obj, event=obj["type"])

    def frames() -> Iterator[bytes]:
        yield ev({"type": "response.created", "response": response("in_progress", [], False)})
        yield ev({"type": "response.in_progress", "response": response("in_progress", [], False)})
        for idx, item in enumerate(items):
            iid = item["id"]
            if item["type"] == "reasoning":
                text = item["summary"][0]["text"]
                yield ev(
                    {
                        "type": "response.output_item.added",
                        "output_index": idx,
                        "item": {**item, "summary": [], "encrypted_content": None},
                    }
                )
                part = {"type": "summary_text", "text": ""}
                base = {"item_id": iid, "output_index": idx, "summary_index": 0}
                yield ev({"type": "response.reasoning_summary_part.added", **base, "part": part})
                for piece in split_args(text):
                    yield ev(
                        {
                            "type": "response.reasoning_summary_text.delta",
                            **base,
                            "delta": piece,
                        }
                    )
                yield ev({"type": "response.reasoning_summary_text.done", **base, "text": text})
                yield ev(
                    {
                        "type": "response.reasoning_summary_part.done",
                        **base,
                        "part": {"type": "summary_text", "text": text},
                    }
                )
            elif item["type"] == "message":
                text = item["content"][0]["text"]
                yield ev(
                    {
                        "type": "response.output_item.added",
                        "output_index": idx,
                        "item": {**item, "status": "in_progress", "content": []},
                    }
                )
                base = {"item_id": iid, "output_index": idx, "content_index": 0}
                empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                yield ev({"type": "response.content_part.added", **base, "part": empty})
                for piece in reply.text_deltas():
                    yield ev(
                        {
                            "type": "response.output_text.delta",
                            **base,
                            "delta": piece,
                            "logprobs": [],
                        }
                    )
                yield ev(
                    {"type": "response.output_text.done", **base, "text": text, "logprobs": []}
                )
                yield ev({"type": "response.content_part.done", **base, "part": item["content"][0]})
            else:
                yield ev(
                    {
                        "type": "response.output_item.added",
                        "output_index": idx,
                        "item": {**item, "status": "in_progress", "arguments": ""},
                    }
                )
                base = {"item_id": iid, "output_index": idx}
                for piece in split_args(item["arguments"]):
                    yield ev(
                        {
                            "type": "response.function_call_arguments.delta",
                            **base,
                            "delta": piece,
                        }
                    )
                yield ev(
                    {
                        "type": "response.function_call_arguments.done",
                        **base,
                        "arguments": item["arguments"],
                    }
                )
            yield ev({"type": "response.output_item.done", "output_index": idx, "item": item})
        done_type = "response.incomplete" if incomplete else "response.completed"
        yield ev({"type": done_type, "response": response(final_status, items, True)})

    return await up.send_stream(request, reply, frames(), headers)
