"""What a test scripts the fake with (Reply, ToolCall, usage tuples), what the fake records
(RecordedRequest), and the small helpers every wire format shares."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

Usage = tuple[int, int, int, int, int]
DEFAULT_TEXT = "Hello from fake upstream"
DEFAULT_USAGE: Usage = (10, 5, 0, 0, 0)


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # the JSON text exactly as the model "produced" it (may be invalid JSON)


@dataclass(slots=True)
class Reply:
    """One scripted answer. Build with the constructors; every modifier is a keyword."""

    content: str | None = None  # the assistant text
    chunks: list[str] | None = None  # exact text deltas; default splits ``content`` by words
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: str | None = None  # thinking text
    signature: str | None = None
    status: int = 200
    message: str | None = None  # error message
    headers: dict[str, str] | None = None
    body: Any = None  # raw error body (dict -> JSON, str/bytes verbatim)
    usage: Usage | tuple[int, ...] = DEFAULT_USAGE
    no_usage: bool = False
    delay_first: float = 0.0  # seconds before the response headers
    chunk_delay: float = 0.0  # seconds between SSE events
    cut_after: int | None = None  # abort the connection after n SSE events, no terminator
    hold_eof: float = 0.0  # seconds to keep a finished stream open before its end (EOF)
    stall_after: int | None = None  # after n SSE events, send nothing more (until cancelled)
    frames: list[bytes] | None = None  # exact SSE bytes, one write each (see Reply.sse)
    model: str | None = None
    interleave: bool = False  # interleave parallel tool-call argument deltas (OpenAI chat)
    stop: str | None = None  # Anthropic vocabulary; "max_tokens" renders as truncation
    verbatim: bool = False  # send ``body`` as is with ``status`` (see Reply.raw)

    @classmethod
    def text(cls, text: str, *, chunks: list[str] | None = None, **mods: Any) -> Reply:
        return cls(content=text, chunks=chunks, **mods)

    @classmethod
    def tools(cls, calls: list[ToolCall], text: str | None = None, **mods: Any) -> Reply:
        return cls(content=text, tool_calls=list(calls), **mods)

    @classmethod
    def thinking(cls, thinking: str, signature: str, text: str, **mods: Any) -> Reply:
        return cls(content=text, reasoning=thinking, signature=signature, **mods)

    @classmethod
    def error(
        cls,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        body: Any = None,
        **mods: Any,
    ) -> Reply:
        return cls(status=status, message=message, headers=headers, body=body, **mods)

    @classmethod
    def raw(
        cls, body: Any, *, status: int = 200, headers: dict[str, str] | None = None, **mods: Any
    ) -> Reply:
        """Answer any endpoint with exactly this body and status (for malformed upstreams)."""
        return cls(status=status, body=body, headers=headers, verbatim=True, **mods)

    @classmethod
    def sse(cls, *frames: bytes | str, **mods: Any) -> Reply:
        """Answer any generation endpoint with 200 and exactly these SSE frames, one write each
        (for in-band errors, malformed and garbage streams); delays, stall and cut apply."""
        raw = [f.encode() if isinstance(f, str) else f for f in frames]
        return cls(frames=raw, **mods)

    def with_(self, **mods: Any) -> Reply:
        return dataclasses.replace(self, **mods)

    # -------------------------------------------------------------- derived views

    @property
    def is_error(self) -> bool:
        """Answered from ``status``/``body`` rather than rendered in the endpoint's format."""
        return self.status >= 400 or self.verbatim

    @property
    def usage5(self) -> Usage:
        u = (*self.usage, 0, 0, 0, 0, 0)[:5]
        return (u[0], u[1], u[2], u[3], u[4])

    def text_deltas(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        if not self.content:
            return []
        return re.findall(r"\s*\S+|\s+$", self.content) or [self.content]


def split_args(arguments: str, parts: int = 3) -> list[str]:
    """Split tool arguments into several deltas (at arbitrary points, as real models do)."""
    if not arguments:
        return []
    size = max(1, math.ceil(len(arguments) / parts))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    json: Any


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def args_obj(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
