"""Server-sent events framing: an incremental parser robust to any chunking, and a writer."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Any

from router import jsonfast


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: str
    id: str | None = None


class SSEParser:
    """Feeds bytes, yields complete events. Handles UTF-8 split across reads, ``\\r\\n``/``\\r``
    line ends, comment lines (keep-alives, ignored) and multi-line ``data:`` fields."""

    __slots__ = ("_buf", "_data", "_decoder", "_event", "_id", "_pending_cr")

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""
        self._event: str | None = None
        self._id: str | None = None
        self._data: list[str] = []
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        text = self._decoder.decode(chunk)
        if not text:
            return []
        if (
            # The usual chunk: one whole "data: ..." frame, nothing held from before.
            not self._buf
            and not self._pending_cr
            and not self._data
            and self._event is None
            and "\r" not in text
            and text.startswith("data:")
            and text.endswith("\n\n")
            and text.count("\n") == 2
        ):
            value = text[5:-2]
            return [SSEEvent(None, value[1:] if value[:1] == " " else value, self._id)]
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]  # the \n of a \r\n split across reads
        self._pending_cr = text.endswith("\r")
        self._buf += text
        out: list[SSEEvent] = []
        lines = self._buf.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._buf = lines.pop()
        for line in lines:
            self._line(line, out)
        return out

    def close(self) -> list[SSEEvent]:
        """End of input: flush a final event that lacked its blank line."""
        out: list[SSEEvent] = []
        tail = self._buf + self._decoder.decode(b"", final=True)
        self._buf = ""
        if tail:
            self._line(tail, out)
        self._line("", out)
        return out

    def _line(self, line: str, out: list[SSEEvent]) -> None:
        if line == "":
            if self._data or self._event is not None:
                out.append(SSEEvent(self._event, "\n".join(self._data), self._id))
            self._event, self._data = None, []
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value


def sse_bytes(data: Any, event: str | None = None) -> bytes:
    """One SSE event; ``data`` that is not a string is JSON-encoded compactly."""
    payload = data if isinstance(data, str) else jsonfast.dumps_str(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def sse_comment(text: str) -> bytes:
    return f": {text}\n\n".encode()


class FrameSplitter:
    """Splits a byte stream into whole SSE frames (each ending in a blank line), keeping the
    exact bytes, for pass-through that still flushes event by event."""

    __slots__ = ("_buf",)

    _ENDS = (b"\r\n\r\n", b"\n\n", b"\r\r")

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buf += chunk
        frames: list[bytes] = []
        while True:
            cut = -1
            for end in self._ENDS:
                pos = self._buf.find(end)
                if pos != -1 and (cut == -1 or pos + len(end) < cut):
                    cut = pos + len(end)
            if cut == -1:
                return frames
            frames.append(self._buf[:cut])
            self._buf = self._buf[cut:]

    def close(self) -> bytes:
        rest, self._buf = self._buf, b""
        return rest
