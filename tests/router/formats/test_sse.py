"""SSE framing (router/formats/sse.py): the parser gives the same events however the bytes
are cut, whether a chunk is one whole ``data:`` frame (its fast path) or not."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from router.formats.sse import SSEEvent, SSEParser

_VALUE = st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=12)
_LINE = st.one_of(
    _VALUE.map(lambda v: f"data:{v}"),
    _VALUE.map(lambda v: f"data: {v}"),
    _VALUE.map(lambda v: f"event: {v}"),
    _VALUE.map(lambda v: f"id: {v}"),
    _VALUE.map(lambda v: f":{v}"),
)
_FRAME = st.lists(_LINE, min_size=1, max_size=3).map(lambda lines: "\n".join(lines) + "\n\n")


def _events(parser: SSEParser, chunks: list[bytes]) -> list[SSEEvent]:
    out: list[SSEEvent] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out + parser.close()


@given(st.lists(_FRAME, max_size=6), st.integers(min_value=1, max_value=7))
def test_whole_frames_and_byte_cuts_give_the_same_events(frames: list[str], step: int) -> None:
    data = "".join(frames).encode()
    whole = _events(SSEParser(), [f.encode() for f in frames])
    cut = _events(SSEParser(), [data[i : i + step] for i in range(0, len(data), step)])
    assert whole == cut


def test_a_single_data_frame() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: {"a": 1}\n\n') == [SSEEvent(None, '{"a": 1}')]
    assert parser.feed(b"id: 7\n\n") == []
    assert parser.feed(b"data:x\n\n") == [SSEEvent(None, "x", "7")]
