"""Work per router call, counted by instrumentation (not timed): how many codec parses and
renders, masking passes and JSON encodes/decodes one /v1 call costs, end to end on a real
server. A change that adds a second pass over the same data fails here.

The counts are of calls into the functions named below, on the event-loop thread (the call
log writer's thread does storage, not this work), from the request until the inspector holds
the call's final record. Each expected number is explained where it is pinned.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import httpx
import orjson

import router
from router.formats import get_codec
from router.traffic import masking
from tests.fakes.upstream import Reply
from tests.web.harness import Server

_SOURCE = Path(router.__file__).resolve().parent.parent
_OURS = tuple(str(_SOURCE / part) + os.sep for part in ("router", "web", "addons"))


def _ours(filename: str) -> bool:
    return filename.startswith(_OURS)


CODEC_METHODS = ("parse_request", "render_request", "parse_response", "render_response")
FORMATS = ("openai-chat", "anthropic", "responses", "gemini")


def _watched() -> tuple[dict[CodeType, str], dict[int, str]]:
    py: dict[CodeType, str] = {}
    for fmt in FORMATS:
        codec_type = type(get_codec(fmt))
        for name in CODEC_METHODS:
            method = getattr(codec_type, name, None)
            code = getattr(method, "__code__", None)
            if code is not None:
                py[code] = f"codec.{name}"
    names = ("mask_headers", "mask_body", "mask_json", "mask_record", "dumps_masked", "clean_json")
    for name in names:
        py[getattr(masking, name).__code__] = f"mask.{name}"
    py[json.dumps.__code__] = "json.encode"
    py[json.loads.__code__] = "json.decode"
    c_funcs: dict[int, str] = {id(orjson.dumps): "json.encode", id(orjson.loads): "json.decode"}
    return py, c_funcs


@contextmanager
def counting() -> Iterator[Counter[str]]:
    py, c_funcs = _watched()
    counts: Counter[str] = Counter()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        # Only calls made by llmtap's own code: the fake upstream and the test's HTTP client
        # run on the same thread and encode/decode JSON too.
        if event == "call":
            name = py.get(frame.f_code)
            caller = frame.f_back
            if name is not None and caller is not None and _ours(caller.f_code.co_filename):
                counts[name] += 1
                if name == "mask.clean_json":  # what the scan reads: the texts it is given
                    counts["scanned.bytes"] += sum(map(len, frame.f_locals["blobs"]))
        elif event == "c_call":
            name = c_funcs.get(id(arg))
            if name is not None and _ours(frame.f_code.co_filename):
                counts[name] += 1

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield counts
    finally:
        sys.setprofile(previous)


async def _final(server: Server, request_id: str) -> None:
    inspector = server.runtime.inspector
    for _ in range(500):  # bounded: 5 s
        record = inspector.get(request_id)
        if record is not None and record.status != "in-flight":
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the call's record never became final")


async def _one_call(server: Server, path: str, body: dict[str, Any]) -> Counter[str]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        await client.post(path, json=body)  # warm-up: imports, codec caches, pools
        with counting() as counts:
            resp = await client.post(path, json=body)
            assert resp.status_code == 200, resp.text
            await _final(server, resp.headers["x-omniroute-request-id"])
    return counts


def _only(counts: Counter[str], prefix: str) -> dict[str, int]:
    return {k: v for k, v in counts.items() if k.startswith(prefix)}


MESSAGES = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}]


async def test_a_whole_same_format_call(server: Server) -> None:
    server.upstream.script(Reply.text("one"), Reply.text("two"))
    body = {"model": server.model("oa"), "messages": MESSAGES}
    counts = await _one_call(server, "/v1/chat/completions", body)
    # One parse of the request (engine) and one of the upstream reply (usage, the record's
    # conversation); same format, so the reply goes out as the upstream's JSON: no renders.
    assert _only(counts, "codec.") == {"codec.parse_request": 1, "codec.parse_response": 1}
    # Masked once, as the record is built: the request headers (mask_headers), then one
    # scan (clean_json) of all the request side's pieces together (body text, conversation
    # turns, path, model names) and one of the response side's (reply body, its turns, the
    # body sent upstream, model, error): no rule can fire in any of them here, so nothing is
    # masked piece by piece (it was a dumps_masked or mask_json or mask_body per piece). The
    # buffer adds nothing. The third scan is the call log row's (its path, model names, error
    # and attempt list, masked as stored). The request as sent upstream: its URL and headers
    # were masked once for this connection, model and header set (by the warm-up call).
    assert _only(counts, "mask.") == {
        "mask.mask_headers": 1,
        "mask.clean_json": 3,
    }  # no mask_record: the buffer takes the records as built, masked
    # JSON: the client's body parsed once, the upstream's reply once; encoded: the upstream
    # body and the reply; for the record (orjson, in C: what the scans read) the request
    # body's text, the request side's other pieces, the upstream body it keeps and the
    # response side's pieces; and the call log row's fields (its masking scan).
    assert counts["json.decode"] == 2
    assert counts["json.encode"] == 7


async def test_a_streamed_cross_format_call(server: Server) -> None:
    server.upstream.script(Reply.text("one two"), Reply.text("three four"))
    body = {
        "model": server.model("oa"),
        "max_tokens": 50,
        "stream": True,
        "system": "Be terse.",
        "messages": MESSAGES[1:],
    }
    counts = await _one_call(server, "/v1/messages", body)
    # Anthropic in, OpenAI up: one parse of the client's body, one render for upstream, and one
    # render of the merged reply for the record's llm.response (the UI's "merged response").
    # The stream itself is parsed by the stream parser, not by parse_response.
    assert _only(counts, "codec.") == {
        "codec.parse_request": 1,
        "codec.render_request": 1,
        "codec.render_response": 1,
    }
    # Headers: the client's, once; the upstream request's (issue 13) were masked by the
    # warm-up call for this connection, model and header set. One scan of the request side's
    # pieces, one of the response side's (turns, merged reply, upstream body); the SSE text
    # the client got is masked apart (mask_body: it is not JSON); the call log row's scan.
    assert _only(counts, "mask.") == {
        "mask.mask_headers": 1,
        "mask.clean_json": 3,
        "mask.mask_body": 1,
    }


PROMPT = "Answer in plain words and cite the file you read. " * 1300  # ~64 KiB of prose


async def test_a_long_prompt_is_scanned_once_per_copy_the_record_keeps(server: Server) -> None:
    """An agent's prompt is long (100+ KiB) and the record keeps it twice: as the request body
    and as the conversation's turns; each is scanned once. The body sent upstream of the same
    format is the client's with the model replaced: not scanned again when the client's body
    needed no masking (it was, a third full pass). Across formats it is a new text: scanned."""
    server.upstream.script(*(Reply.text("ok") for _ in range(4)))
    chat = {"model": server.model("oa"), "messages": [{"role": "system", "content": PROMPT},
                                                      {"role": "user", "content": "hi"}]}  # fmt: skip
    same = await _one_call(server, "/v1/chat/completions", chat)
    assert 2 * len(PROMPT) <= same["scanned.bytes"] < 2.2 * len(PROMPT)
    messages = {"model": server.model("oa"), "max_tokens": 50, "system": PROMPT,
                "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    cross = await _one_call(server, "/v1/messages", messages)  # Anthropic in, OpenAI up
    assert 3 * len(PROMPT) <= cross["scanned.bytes"] < 3.2 * len(PROMPT)
