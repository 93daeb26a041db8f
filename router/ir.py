"""The canonical model of one LLM exchange: request, response, usage and stream events.

Every wire format is parsed into these types and rendered from them (N codecs, not N*N
translators). Conventions that every codec relies on:

* Token semantics are OpenAI's: ``Usage.input_tokens`` is the whole prompt *including* cache
  reads and cache writes; ``output_tokens`` includes reasoning tokens. Codecs convert at the
  boundary (Anthropic's input excludes cache tokens).
* Stop reasons use Anthropic's vocabulary (``end_turn``, ``max_tokens``, ``tool_use``, ...).
* Stream block indices count every content block (text, thinking and tool_use alike), in the
  order blocks start, as Anthropic does. Codecs whose own numbering differs (OpenAI
  ``tool_calls[].index``, Responses ``output_index``) keep their own map.
* Tool-use ids are kept verbatim in the IR; a codec whose format restricts ids maps them with
  :func:`safe_tool_id`, which is deterministic so the same id maps the same way every turn.
* ``extra`` holds fields of the source format that the IR has no slot for; a renderer for the
  same format writes them back, a renderer for another format lists them in ``dropped``.
"""

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
    name: str
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    extra: dict[str, Any] = field(default_factory=dict)


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


# --------------------------------------------------------------------------- helpers


class StreamAccumulator:
    """Folds stream events into the equivalent non-streamed :class:`Response`.

    The one implementation of "merge a stream": the router uses it for usage/cost and call
    logs, the inspector for the merged response of captured SSE. Tool arguments are joined
    first and parsed at block stop; a string that is not JSON is kept in ``raw_arguments``.
    """

    __slots__ = ("_args", "_blocks", "error", "response", "started", "stopped")

    def __init__(self) -> None:
        self.response = Response()
        self._blocks: dict[int, Block] = {}
        self._args: dict[int, list[str]] = {}
        self.error: ErrorEvent | None = None
        self.started = False
        self.stopped = False

    def feed(self, event: StreamEvent) -> None:
        match event:
            case MessageStart():
                self.started = True
                self.response.id = event.id or self.response.id
                self.response.model = event.model or self.response.model
                self.response.created = event.created or self.response.created
                if event.usage is not None:
                    self._usage().merge(event.usage)
            case BlockStart():
                self._blocks[event.index] = _fresh_copy(event.block)
            case BlockDelta():
                block = self._blocks.get(event.index)
                if block is None:  # a delta without a start: create the block it implies
                    block = _block_for_delta(event.kind)
                    self._blocks[event.index] = block
                _apply_delta(block, event, self._args)
            case BlockStop():
                self._finish(event.index)
            case MessageDelta():
                if event.stop_reason is not None:
                    self.response.stop_reason = event.stop_reason
                if event.stop_sequence is not None:
                    self.response.stop_sequence = event.stop_sequence
                if event.usage is not None:
                    self._usage().merge(event.usage)
            case MessageStop():
                self.stopped = True
            case ErrorEvent():
                self.error = event

    def feed_all(self, events: list[StreamEvent]) -> None:
        for event in events:
            self.feed(event)

    def result(self) -> Response:
        """The merged response so far (blocks still open are closed as they stand); marked
        ``incomplete`` until the stream's end arrives, and for good after an error."""
        for index in list(self._args):
            self._finish(index)
        self.response.content = [self._blocks[i] for i in sorted(self._blocks)]
        self.response.incomplete = not self.stopped or self.error is not None
        return self.response

    def _usage(self) -> Usage:
        if self.response.usage is None:
            self.response.usage = Usage()
        return self.response.usage

    def _finish(self, index: int) -> None:
        parts = self._args.pop(index, None)
        block = self._blocks.get(index)
        if parts is not None and isinstance(block, ToolUseBlock):
            set_tool_arguments(block, "".join(parts))


def _fresh_copy(block: Block) -> Block:
    match block:
        case TextBlock():
            return TextBlock(text=block.text, cache_control=block.cache_control)
        case ThinkingBlock():
            return ThinkingBlock(
                thinking=block.thinking,
                signature=block.signature,
                redacted=block.redacted,
                data=block.data,
                origin=block.origin,
            )
        case ToolUseBlock():
            return ToolUseBlock(id=block.id, name=block.name, input=block.input)
        case _:
            return block


def _block_for_delta(kind: str) -> Block:
    if kind in ("thinking", "signature"):
        return ThinkingBlock()
    if kind == "input_json":
        return ToolUseBlock()
    return TextBlock()


def _apply_delta(block: Block, event: BlockDelta, args: dict[int, list[str]]) -> None:
    if event.kind == "text" and isinstance(block, TextBlock):
        block.text += event.text
    elif event.kind == "thinking" and isinstance(block, ThinkingBlock):
        block.thinking += event.text
    elif event.kind == "signature" and isinstance(block, ThinkingBlock):
        block.signature = (block.signature or "") + event.text
    elif event.kind == "input_json" and isinstance(block, ToolUseBlock):
        args.setdefault(event.index, []).append(event.text)


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


def response_events(resp: Response) -> list[StreamEvent]:
    """A whole response as the stream that would have produced it (for rendering a
    non-streamed upstream answer to a streaming client)."""
    events: list[StreamEvent] = [
        MessageStart(
            id=resp.id,
            model=resp.model,
            created=resp.created,
            usage=Usage(
                input_tokens=resp.usage.input_tokens,
                cache_read_tokens=resp.usage.cache_read_tokens,
                cache_write_tokens=resp.usage.cache_write_tokens,
            )
            if resp.usage
            else None,
        )
    ]
    for index, block in enumerate(resp.content):
        match block:
            case TextBlock():
                events.append(BlockStart(index, TextBlock()))
                if block.text:
                    events.append(BlockDelta(index, "text", block.text))
            case ThinkingBlock():
                start = ThinkingBlock(redacted=block.redacted, data=block.data, origin=block.origin)
                events.append(BlockStart(index, start))
                if block.thinking:
                    events.append(BlockDelta(index, "thinking", block.thinking))
                if block.signature:
                    events.append(BlockDelta(index, "signature", block.signature))
            case ToolUseBlock():
                events.append(BlockStart(index, ToolUseBlock(id=block.id, name=block.name)))
                events.append(BlockDelta(index, "input_json", block.arguments_json()))
            case _:
                continue
        events.append(BlockStop(index))
    events.append(
        MessageDelta(
            stop_reason=resp.stop_reason, stop_sequence=resp.stop_sequence, usage=resp.usage
        )
    )
    events.append(MessageStop())
    return events


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


# --------------------------------------------------------------------------- reasoning effort

# The one table between reasoning effort (OpenAI, Gemini 3 levels) and thinking budget
# (Anthropic, Gemini 2.x), in tokens; every codec converts through it.
EFFORT_BUDGET: dict[Effort, int] = {
    "none": 0,
    "minimal": 1024,  # Anthropic's smallest allowed budget
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32000,
}
# What a budget becomes: only the levels every reasoning API accepts.
_BUDGET_EFFORTS: tuple[Effort, ...] = ("low", "medium", "high")


def budget_for_effort(effort: Effort) -> int:
    return EFFORT_BUDGET[effort]


def effort_for_budget(budget: int) -> Effort:
    """The highest of low/medium/high whose budget ``budget`` reaches (low below that), so
    ``effort_for_budget(budget_for_effort(e)) == e`` for those three."""
    chosen: Effort = "low"
    for effort in _BUDGET_EFFORTS:
        if budget >= EFFORT_BUDGET[effort]:
            chosen = effort
    return chosen


# --------------------------------------------------------------------------- model knowledge

_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
_CLAUDE_FAMILY = re.compile(r"(opus|sonnet|haiku)-(\d)(?!\d)(?:[-.](\d)(?!\d))?")


def is_openai_reasoning_model(model: str) -> bool:
    """OpenAI reasoning models take ``max_completion_tokens`` and reject sampling knobs."""
    name = model.rsplit("/", 1)[-1].lower()
    return name.startswith(_REASONING_PREFIXES)


def claude_output_limits(model: str) -> tuple[int, int | None]:
    """``(default max_tokens, max output cap or None when unknown)`` for a Claude model name.

    The default is deliberately below the cap: Anthropic counts ``max_tokens`` against the
    output-tokens-per-minute rate limit, so asking for the whole window by default hurts."""
    name = model.lower()
    if match := _CLAUDE_FAMILY.search(name):
        family, major, minor = match.group(1), int(match.group(2)), int(match.group(3) or 0)
        if major >= 4:
            # Opus 4 and 4.1 stop at 32k output; the later 4.x models allow 64k.
            cap = 32000 if family == "opus" and (major, minor) < (4, 5) else 64000
            return 32000, cap
    if re.search(r"claude-3[-.]7", name):
        return 32000, 64000
    if re.search(r"claude-3[-.]5", name):
        return 8192, 8192
    if "claude-3" in name:
        return 4096, 4096
    return 4096, None
