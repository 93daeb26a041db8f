"""Stream events <-> whole responses: :class:`StreamAccumulator` folds events into a
:class:`Response`; :func:`response_events` replays a response as events."""

from __future__ import annotations

from router.ir.model import (
    Block,
    BlockDelta,
    BlockStart,
    BlockStop,
    ErrorEvent,
    MessageDelta,
    MessageStart,
    MessageStop,
    Response,
    StreamEvent,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    Usage,
    set_tool_arguments,
)


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
            return ToolUseBlock(
                id=block.id,
                name=block.name,
                input=block.input,
                namespace=block.namespace,
                free_form=block.free_form,
            )
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
                start_call = ToolUseBlock(
                    id=block.id,
                    name=block.name,
                    namespace=block.namespace,
                    free_form=block.free_form,
                )
                events.append(BlockStart(index, start_call))
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
