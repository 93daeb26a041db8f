"""What the codec tests of every format share: stream helpers (feed a codec's stream parser
whole or in pieces, fold the events into one response, render events back to bytes) and
samples in the IR."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

from router import ir
from router.formats import Codec


def cut(data: bytes, sizes: Sequence[int]) -> list[bytes]:
    """``data`` in pieces of ``sizes``, then the rest as the last piece."""
    pieces, pos = [], 0
    for size in sizes:
        pieces.append(data[pos : pos + size])
        pos += size
    pieces.append(data[pos:])
    return pieces


def random_pieces(data: bytes, seed: int, largest: int = 40) -> list[bytes]:
    """``data`` cut at random places (seeded), no piece longer than ``largest``."""
    rng = random.Random(seed)
    pieces, i = [], 0
    while i < len(data):
        step = rng.randint(1, largest)
        pieces.append(data[i : i + step])
        i += step
    return pieces


def parse_pieces(codec: Codec, pieces: Iterable[bytes]) -> list[ir.StreamEvent]:
    """Feed ``pieces`` in order to a fresh parser of ``codec``, then close it."""
    parser = codec.stream_parser()
    events: list[ir.StreamEvent] = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    events.extend(parser.close())
    return events


def accumulate(events: list[ir.StreamEvent], *, finished: bool = True) -> ir.Response:
    """The response ``events`` add up to; ``finished``: they stopped without an error."""
    acc = ir.StreamAccumulator()
    acc.feed_all(events)
    if finished:
        assert acc.error is None and acc.stopped, (acc.error, acc.stopped)
    return acc.result()


def render_bytes(codec: Codec, events: Iterable[ir.StreamEvent], req: ir.Request) -> bytes:
    """``events`` rendered by ``codec``'s stream renderer for ``req``, finish included."""
    renderer = codec.stream_renderer(req)
    return b"".join(renderer.render(e) for e in events) + renderer.finish()


def claude_turn(second_call: ir.ToolUseBlock) -> ir.Response:
    """A Claude turn in the IR: signed thinking, text and two tool calls (``second_call`` the
    second), stopped for the tools, with cache-read and reasoning tokens."""
    return ir.Response(
        id="msg_1",
        model="claude-x",
        created=1700000002,
        content=[
            ir.ThinkingBlock("deep", signature="sig", origin="anthropic"),
            ir.TextBlock("I'll look."),
            ir.ToolUseBlock(id="toolu_a", name="read", input={"p": 1}),
            second_call,
        ],
        stop_reason="tool_use",
        usage=ir.Usage(input_tokens=30, output_tokens=12, cache_read_tokens=10, reasoning_tokens=3),
    )
