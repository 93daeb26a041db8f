"""The IR's types: content blocks, messages, request, usage, response and stream events (the
conventions they follow are in :mod:`router.ir`)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
StopReason = Literal[
    "end_turn", "max_tokens", "tool_use", "stop_sequence", "content_filter", "pause_turn", "error"
]
Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
EFFORTS: tuple[Effort, ...] = ("none", "minimal", "low", "medium", "high", "xhigh")


# --------------------------------------------------------------------------- content blocks


@dataclass(slots=True)
class TextBlock:
    text: str = ""
    type: Literal["text"] = "text"
    cache_control: dict[str, Any] | None = None


@dataclass(slots=True)
class ImageBlock:
    """An image by inline base64 data (``data`` + ``media_type``) or by ``url``."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    type: Literal["image"] = "image"


@dataclass(slots=True)
class ToolUseBlock:
    """A tool call. ``input`` is the parsed JSON object; ``raw_arguments`` keeps the exact
    argument string when it was not valid JSON (never silently replaced by ``{}``)."""

    id: str = ""
    name: str = ""
    input: Any = field(default_factory=dict)
    raw_arguments: str | None = None
    # Set only where the source format says so (Responses): see :class:`Tool`.
    namespace: str | None = None
    free_form: bool = False
    type: Literal["tool_use"] = "tool_use"

    def arguments_json(self) -> str:
        """The arguments as the JSON string OpenAI-style formats carry."""
        if self.raw_arguments is not None:
            return self.raw_arguments
        return json.dumps(self.input, ensure_ascii=False, separators=(",", ":"))


@dataclass(slots=True)
class ToolResultBlock:
    tool_use_id: str = ""
    content: list[TextBlock | ImageBlock] = field(default_factory=list)
    is_error: bool = False
    name: str | None = None  # Gemini pairs results by function name
    type: Literal["tool_result"] = "tool_result"

    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))


@dataclass(slots=True)
class ThinkingBlock:
    """Model reasoning. ``signature`` is Anthropic's; ``redacted`` blocks carry opaque ``data``.
    ``origin`` names the format that produced it, so a renderer can drop thinking that its
    provider would reject (e.g. non-Anthropic thinking sent to Anthropic)."""

    thinking: str = ""
    signature: str | None = None
    redacted: bool = False
    data: str | None = None
    origin: str | None = None
    type: Literal["thinking"] = "thinking"


Block = TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock


@dataclass(slots=True)
class Message:
    role: Role
    content: list[Block] = field(default_factory=list)
    name: str | None = None

    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))


# --------------------------------------------------------------------------- request


@dataclass(slots=True)
class Tool:
    """A tool the model may call.

    ``namespace``: the group a Responses client declared it in (Codex's ``additional_tools``);
    formats without namespaces know it by ``formats.tools.flat_name``.
    ``free_form``: a custom tool whose input is one free-form string, constrained by
    ``input_format`` (``{"type": "grammar", ...}``, ``{"type": "text"}`` or None); its
    ``parameters`` hold the equivalent single-string-field schema, which is what formats
    without custom tools offer, and its calls carry ``{"input": text}``
    (``formats.tools``).
    """

    name: str
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    extra: dict[str, Any] = field(default_factory=dict)
    namespace: str | None = None
    free_form: bool = False
    input_format: dict[str, Any] | None = None


@dataclass(slots=True)
class ToolChoice:
    """``auto`` | ``none`` | ``required`` (any tool) | ``tool`` (the one named)."""

    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None


@dataclass(slots=True)
class Request:
    model: str
    messages: list[Message] = field(default_factory=list)
    system: list[TextBlock] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    reasoning_effort: Effort | None = None
    thinking_budget: int | None = None
    response_format: dict[str, Any] | None = None
    stream: bool = False
    include_usage: bool = False  # the client asked for usage in the stream
    user: str | None = None
    metadata: dict[str, Any] | None = None
    source_format: str = ""
    # Tool namespaces by name: each declaration's own fields (description, ...) in order, and
    # where the client declared them (Responses: the ``additional_tools`` item's id and role).
    tool_namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    tool_namespaces_item: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)  # filled by renderers

    def system_text(self) -> str:
        return "\n".join(b.text for b in self.system)


# --------------------------------------------------------------------------- response


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0  # whole prompt, cache reads and writes included
    output_tokens: int = 0  # reasoning included
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    def merge(self, other: Usage) -> None:
        """Take every figure ``other`` knows (non-zero); later stream events refine earlier."""
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
        ):
            value = getattr(other, name)
            if value:
                setattr(self, name, value)
        self.estimated = self.estimated and other.estimated


@dataclass(slots=True)
class Response:
    id: str = ""
    model: str = ""
    content: list[Block] = field(default_factory=list)
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    usage: Usage | None = None
    created: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # A merged stream that never reached its end (cut, or ended by an error): what arrived,
    # with no finish reason made up for it.
    incomplete: bool = False

    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))

    def tool_calls(self) -> list[ToolUseBlock]:
        return [b for b in self.content if isinstance(b, ToolUseBlock)]


# --------------------------------------------------------------------------- stream events


@dataclass(slots=True)
class MessageStart:
    id: str = ""
    model: str = ""
    usage: Usage | None = None  # input tokens known so far, if any
    created: int | None = None
    type: Literal["message_start"] = "message_start"


@dataclass(slots=True)
class BlockStart:
    """Opens block ``index``. ``block`` carries the fixed parts: a ToolUseBlock's id and name, a
    redacted ThinkingBlock's data; text fields start empty and grow through BlockDelta."""

    index: int
    block: Block
    type: Literal["block_start"] = "block_start"


@dataclass(slots=True)
class BlockDelta:
    """``kind``: ``text``, ``thinking``, ``signature`` or ``input_json`` (a piece of tool args)."""

    index: int
    kind: Literal["text", "thinking", "signature", "input_json"]
    text: str
    type: Literal["block_delta"] = "block_delta"


@dataclass(slots=True)
class BlockStop:
    index: int
    type: Literal["block_stop"] = "block_stop"


@dataclass(slots=True)
class MessageDelta:
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    usage: Usage | None = None
    type: Literal["message_delta"] = "message_delta"


@dataclass(slots=True)
class MessageStop:
    type: Literal["message_stop"] = "message_stop"


@dataclass(slots=True)
class ErrorEvent:
    message: str
    error_type: str = "api_error"
    status: int | None = None
    type: Literal["error"] = "error"


StreamEvent = (
    MessageStart | BlockStart | BlockDelta | BlockStop | MessageDelta | MessageStop | ErrorEvent
)


# --------------------------------------------------------------------------- block helpers


def set_tool_arguments(block: ToolUseBlock, raw: str) -> None:
    """Parse joined tool arguments; keep the raw string when it is not a JSON object."""
    if raw.strip() == "":
        block.input, block.raw_arguments = {}, None
        return
    try:
        parsed = json.loads(raw)
    except ValueError:
        block.input, block.raw_arguments = {}, raw
        return
    if isinstance(parsed, dict):
        block.input, block.raw_arguments = parsed, None
    else:
        block.input, block.raw_arguments = {}, raw


_SAFE_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


def safe_tool_id(tool_id: str) -> str:
    """Map any tool-call id to Anthropic's ``^[a-zA-Z0-9_-]+$`` deterministically: valid ids
    are kept; others become their safe characters plus a short hash of the original, so two
    different ids never collide and the same id maps the same way on every turn."""
    if tool_id and _SAFE_ID.match(tool_id):
        return tool_id
    cleaned = re.sub(r"[^a-zA-Z0-9_-]", "_", tool_id)[:48]
    digest = hashlib.sha256(tool_id.encode()).hexdigest()[:8]
    return f"{cleaned}_{digest}" if cleaned.strip("_") else f"toolu_{digest}"
