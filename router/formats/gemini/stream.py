"""Gemini SSE streams (``data: {chunk}`` lines, Cloud Code chunks inside ``{"response": ...}``):
parse upstream chunks into IR events, render IR events for a client."""

from __future__ import annotations

from typing import Any

from router import ir, jsonfast
from router.formats.gemini import NAME
from router.formats.gemini.parts import call_args, image_part, is_generated_id
from router.formats.gemini.response import EventBuilder, render_stop_reason, render_usage
from router.formats.sse import SSEParser, sse_bytes

_STATUS_FOR_TYPE: dict[str, tuple[int, str]] = {
    "invalid_request_error": (400, "INVALID_ARGUMENT"),
    "authentication_error": (401, "UNAUTHENTICATED"),
    "permission_error": (403, "PERMISSION_DENIED"),
    "not_found_error": (404, "NOT_FOUND"),
    "rate_limit_error": (429, "RESOURCE_EXHAUSTED"),
    "overloaded_error": (503, "UNAVAILABLE"),
    "timeout_error": (504, "DEADLINE_EXCEEDED"),
}
_TYPE_FOR_STATUS = {status: kind for kind, (_, status) in _STATUS_FOR_TYPE.items()}
_TYPE_FOR_STATUS["FAILED_PRECONDITION"] = "invalid_request_error"


def error_event(message: str, error_type: str = "api_error") -> bytes:
    return sse_bytes(_error_body(message, error_type))


class StreamParser:
    """``data: {chunk}`` SSE -> IR events; ``envelope`` unwraps Cloud Code's ``{"response": ...}``."""

    def __init__(self, envelope: bool = False) -> None:
        self.envelope = envelope
        self.sse = SSEParser()
        self.builder = EventBuilder()
        self.failed = False

    def feed(self, chunk: bytes) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        for event in self.sse.feed(chunk):
            out.extend(self._data(event.data))
        return out

    def close(self) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        for event in self.sse.close():
            out.extend(self._data(event.data))
        if not self.failed:
            out.extend(self.builder.end())
            self.failed = True  # nothing more after the end
        return out

    def _data(self, raw: str) -> list[ir.StreamEvent]:
        if self.failed or raw.strip() in ("", "[DONE]"):
            return []
        try:
            data = jsonfast.loads(raw)
        except ValueError:
            self.failed = True
            return [ir.ErrorEvent(f"invalid JSON in Gemini stream: {raw[:200]}", "api_error")]
        if not isinstance(data, dict):
            return []
        if isinstance(data.get("error"), dict):
            self.failed = True
            return [_error_from(data["error"])]
        if self.envelope and isinstance(data.get("response"), dict):
            data = data["response"]
        return self.builder.chunk(data)


def _error_from(error: dict[str, Any]) -> ir.ErrorEvent:
    status = str(error.get("status") or "")
    code = error.get("code")
    return ir.ErrorEvent(
        message=str(error.get("message") or status or "upstream error"),
        error_type=_TYPE_FOR_STATUS.get(status, "api_error"),
        status=code if isinstance(code, int) else None,
    )


def _error_body(message: str, error_type: str, status: int | None = None) -> dict[str, Any]:
    code, name = _STATUS_FOR_TYPE.get(error_type, (500, "INTERNAL"))
    return {"error": {"code": status or code, "message": message, "status": name}}


class StreamRenderer:
    """IR events -> ``data: {chunk}`` SSE: one chunk per text delta and per whole call, then a
    final chunk with ``finishReason`` and ``usageMetadata``."""

    def __init__(self, req: ir.Request, envelope: bool = False) -> None:
        self.envelope = envelope
        self.model = req.model
        self.id = ""
        self.blocks: dict[int, ir.Block] = {}
        self.args: dict[int, list[str]] = {}
        self.thought_text: set[int] = set()  # thinking blocks that carried text
        self.signature: str | None = None  # waiting for the next part
        self.usage: ir.Usage | None = None
        self.stop: ir.StopReason | None = None
        self.done = False

    def render(self, event: ir.StreamEvent) -> bytes:
        if self.done:
            return b""
        match event:
            case ir.MessageStart():
                self.id = event.id or self.id
                self.model = event.model or self.model
                if event.usage is not None:
                    self.usage = ir.Usage()
                    self.usage.merge(event.usage)
            case ir.BlockStart():
                self.blocks[event.index] = event.block
                if isinstance(event.block, ir.ImageBlock):
                    return self._chunk([image_part(event.block)])
            case ir.BlockDelta():
                return self._delta(event)
            case ir.BlockStop():
                return self._stop(event.index)
            case ir.MessageDelta():
                self.stop = event.stop_reason or self.stop
                if event.usage is not None:
                    if self.usage is None:
                        self.usage = ir.Usage()
                    self.usage.merge(event.usage)
            case ir.MessageStop():
                return self._final()
            case ir.ErrorEvent():
                self.done = True
                return sse_bytes(_error_body(event.message, event.error_type, event.status))
        return b""

    def finish(self) -> bytes:
        return b"" if self.done else self._final()

    def _delta(self, event: ir.BlockDelta) -> bytes:
        block = self.blocks.get(event.index)
        if event.kind == "input_json":
            self.args.setdefault(event.index, []).append(event.text)
            return b""
        if event.kind == "text":
            return self._chunk([{"text": event.text}])
        foreign = isinstance(block, ir.ThinkingBlock) and block.origin not in (None, NAME)
        if event.kind == "thinking":
            self.thought_text.add(event.index)
            return self._chunk([{"text": event.text, "thought": True}])
        if foreign:  # another provider's signature means nothing to a Gemini client
            return b""
        if event.index in self.thought_text:
            return self._chunk([{"text": "", "thought": True, "thoughtSignature": event.text}])
        self.signature = (self.signature or "") + event.text
        return b""

    def _stop(self, index: int) -> bytes:
        block = self.blocks.get(index)
        if not isinstance(block, ir.ToolUseBlock):
            return b""
        tool = ir.ToolUseBlock(id=block.id, name=block.name)
        ir.set_tool_arguments(tool, "".join(self.args.pop(index, [])))
        call: dict[str, Any] = {"name": tool.name, "args": call_args(tool)}
        if tool.id and not is_generated_id(tool.id, tool.name):
            call["id"] = tool.id
        return self._chunk([{"functionCall": call}])

    def _final(self) -> bytes:
        self.done = True
        parts: list[dict[str, Any]] = [{"text": ""}]
        candidate: dict[str, Any] = {
            "content": {"role": "model", "parts": parts},
            "finishReason": render_stop_reason(self.stop),
            "index": 0,
        }
        return self._chunk(parts, candidate=candidate, final=True)

    def _chunk(
        self,
        parts: list[dict[str, Any]],
        *,
        candidate: dict[str, Any] | None = None,
        final: bool = False,
    ) -> bytes:
        if self.signature is not None:
            parts[0]["thoughtSignature"] = self.signature
            self.signature = None
        if candidate is None:
            candidate = {"content": {"role": "model", "parts": parts}, "index": 0}
        chunk: dict[str, Any] = {"candidates": [candidate]}
        if final and self.usage is not None:
            chunk["usageMetadata"] = render_usage(self.usage)
        chunk["modelVersion"] = self.model
        if self.id:
            chunk["responseId"] = self.id
        return sse_bytes({"response": chunk} if self.envelope else chunk)
