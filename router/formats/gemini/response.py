"""Gemini responses: parse an upstream response, render one for a client; usage and stop
reasons. A whole response is parsed as a one-chunk stream, so both share every rule."""

from __future__ import annotations

from typing import Any, Literal

from router import ir
from router.formats.common import as_int
from router.formats.gemini import NAME
from router.formats.gemini.parts import PartWriter, bad, code_text, dumps, read, rest_of

_CONTENT_FILTER = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
}
_ERROR_FINISH = {"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"}
_FINISH_FOR_STOP: dict[str, str] = {
    "end_turn": "STOP",
    "tool_use": "STOP",
    "stop_sequence": "STOP",
    "pause_turn": "STOP",
    "max_tokens": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "error": "OTHER",
}


# --------------------------------------------------------------------------- usage and stop reasons


def parse_stop_reason(finish: str | None, saw_call: bool) -> ir.StopReason | None:
    """Gemini ``finishReason`` -> IR stop reason; a turn that called a function is tool_use."""
    if finish is None or finish == "FINISH_REASON_UNSPECIFIED":
        return None
    if finish in _CONTENT_FILTER:
        return "content_filter"
    if finish in _ERROR_FINISH:
        return "error"
    if finish == "MAX_TOKENS":
        return "max_tokens"
    return "tool_use" if saw_call else "end_turn"


def parse_usage(meta: dict[str, Any]) -> ir.Usage:
    """``usageMetadata`` -> IR usage (prompt includes cached; output includes thoughts)."""
    thoughts = as_int(read(meta, "thoughtsTokenCount"))
    return ir.Usage(
        input_tokens=as_int(read(meta, "promptTokenCount"))
        + as_int(read(meta, "toolUsePromptTokenCount")),
        output_tokens=as_int(read(meta, "candidatesTokenCount")) + thoughts,
        cache_read_tokens=as_int(read(meta, "cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def render_usage(usage: ir.Usage, rest: dict[str, Any] | None = None) -> dict[str, Any]:
    rest = rest or {}
    tool_prompt = as_int(read(rest, "toolUsePromptTokenCount"))
    meta: dict[str, Any] = {
        "promptTokenCount": usage.input_tokens - tool_prompt,
        "candidatesTokenCount": usage.output_tokens - usage.reasoning_tokens,
        "totalTokenCount": usage.input_tokens + usage.output_tokens,
    }
    if usage.cache_read_tokens:
        meta["cachedContentTokenCount"] = usage.cache_read_tokens
    if usage.reasoning_tokens:
        meta["thoughtsTokenCount"] = usage.reasoning_tokens
    return {**meta, **rest}


def render_stop_reason(stop: ir.StopReason | None) -> str:
    return _FINISH_FOR_STOP.get(stop or "end_turn", "STOP")


# --------------------------------------------------------------------------- response events


class EventBuilder:
    """Gemini response chunks -> IR stream events. A whole response is one chunk, so
    ``parse_response`` and the stream parser share every mapping rule."""

    def __init__(self) -> None:
        self.started = False
        self.next_index = 0
        self.open: tuple[int, str] | None = None  # (index, "text" | "thinking")
        self.open_signed = False
        self.calls = 0
        self.finish: str | None = None
        self.blocked = False
        self.usage: ir.Usage | None = None

    @property
    def finished(self) -> bool:
        return self.finish is not None or self.blocked

    def chunk(self, data: dict[str, Any]) -> list[ir.StreamEvent]:
        out: list[ir.StreamEvent] = []
        meta = read(data, "usageMetadata")
        if isinstance(meta, dict):
            self.usage = parse_usage(meta)
        if not self.started:
            self.started = True
            start_usage = None
            if self.usage is not None:
                start_usage = ir.Usage(
                    input_tokens=self.usage.input_tokens,
                    cache_read_tokens=self.usage.cache_read_tokens,
                )
            out.append(
                ir.MessageStart(
                    id=str(read(data, "responseId") or ""),
                    model=str(read(data, "modelVersion") or ""),
                    usage=start_usage,
                )
            )
        candidate = first_candidate(data)
        if candidate is None:
            feedback = read(data, "promptFeedback")
            if isinstance(feedback, dict) and read(feedback, "blockReason"):
                self.blocked = True
            return out
        content = read(candidate, "content")
        parts = read(content, "parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict):
                self._part(part, out)
        finish = read(candidate, "finishReason")
        if isinstance(finish, str):
            self.finish = finish
            self._close(out)
        return out

    def end(self) -> list[ir.StreamEvent]:
        if not self.finished:
            return [ir.ErrorEvent("Gemini stream ended without a finishReason", "api_error")]
        out: list[ir.StreamEvent] = []
        self._close(out)
        stop = "content_filter" if self.blocked else parse_stop_reason(self.finish, self.calls > 0)
        out.append(ir.MessageDelta(stop_reason=stop, usage=self.usage))
        out.append(ir.MessageStop())
        return out

    def _part(self, part: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        signature = read(part, "thoughtSignature")
        signature = signature if isinstance(signature, str) and signature else None
        text = read(part, "text")
        if read(part, "thought") is True:
            if isinstance(text, str) and text:
                self._extend("thinking", "thinking", text, out, fresh=self.open_signed)
            if signature is not None:
                self._extend("thinking", "signature", signature, out, fresh=self.open_signed)
                self.open_signed = True
            return
        if signature is not None:
            index = self._start(ir.ThinkingBlock(origin=NAME), out)
            out.append(ir.BlockDelta(index, "signature", signature))
            self._close(out)
        if not isinstance(text, str):
            text = code_text(part)
        if isinstance(text, str):
            if text:
                self._extend("text", "text", text, out, fresh=False)
            return
        call = read(part, "functionCall")
        if isinstance(call, dict):
            name = str(read(call, "name") or "")
            call_id = read(call, "id")
            block = ir.ToolUseBlock(
                id=call_id if isinstance(call_id, str) and call_id else f"call_{name}_{self.calls}",
                name=name,
            )
            self.calls += 1
            index = self._start(block, out)
            args = read(call, "args")
            out.append(ir.BlockDelta(index, "input_json", dumps({} if args is None else args)))
            self._close(out)
            return
        inline, file = read(part, "inlineData"), read(part, "fileData")
        if isinstance(inline, dict):
            image = ir.ImageBlock(media_type=read(inline, "mimeType"), data=read(inline, "data"))
        elif isinstance(file, dict):
            image = ir.ImageBlock(media_type=read(file, "mimeType"), url=read(file, "fileUri"))
        else:
            return  # a part kind the IR cannot hold
        self._start(image, out)
        self._close(out)

    def _extend(
        self,
        kind: Literal["text", "thinking"],
        delta: Literal["text", "thinking", "signature"],
        text: str,
        out: list[ir.StreamEvent],
        *,
        fresh: bool,
    ) -> None:
        if self.open is None or self.open[1] != kind or fresh:
            block: ir.Block = ir.TextBlock() if kind == "text" else ir.ThinkingBlock(origin=NAME)
            self._start(block, out)
            self.open = (self.next_index - 1, kind)
        out.append(ir.BlockDelta(self.open[0], delta, text))

    def _start(self, block: ir.Block, out: list[ir.StreamEvent]) -> int:
        self._close(out)
        index = self.next_index
        self.next_index += 1
        out.append(ir.BlockStart(index, block))
        self.open = (index, "other")
        return index

    def _close(self, out: list[ir.StreamEvent]) -> None:
        if self.open is not None:
            out.append(ir.BlockStop(self.open[0]))
            self.open = None
            self.open_signed = False


def first_candidate(data: dict[str, Any]) -> dict[str, Any] | None:
    candidates = read(data, "candidates")
    if not isinstance(candidates, list):
        return None
    for candidate in candidates:
        if isinstance(candidate, dict) and read(candidate, "index") in (None, 0):
            return candidate
    return None


# --------------------------------------------------------------------------- responses


def parse_response(body: dict[str, Any], *, envelope: bool = False) -> ir.Response:
    """A Gemini response, or with ``envelope`` a Cloud Code ``{"response": ...}``."""
    if envelope:
        inner = body.get("response") if isinstance(body, dict) else None
        if isinstance(inner, dict):
            resp = parse_response(inner)
            if rest := {k: v for k, v in body.items() if k != "response"}:
                resp.extra["envelope"] = rest
            return resp
        # tolerate a bare Gemini body
    if not isinstance(body, dict):
        raise bad("body", "must be a JSON object")
    candidates = read(body, "candidates")
    if candidates is not None and not isinstance(candidates, list):
        raise bad("candidates", "must be an array")
    builder = EventBuilder()
    acc = ir.StreamAccumulator()
    acc.feed_all(builder.chunk(body))
    if not builder.finished:
        builder.finish = "STOP"  # a whole response is complete even without a reason
    acc.feed_all(builder.end())
    resp = acc.result()
    resp.extra = rest_of(body, ("candidates", "usageMetadata", "modelVersion", "responseId"))
    candidate = first_candidate(body)
    if candidate is not None:
        if rest := rest_of(candidate, ("content", "finishReason", "index")):
            resp.extra["candidate"] = rest
        finish = read(candidate, "finishReason")
        if isinstance(finish, str) and finish != _FINISH_FOR_STOP.get(resp.stop_reason or ""):
            resp.extra["finishReason"] = finish
        content = read(candidate, "content")
        if isinstance(content, dict) and (rest := rest_of(content, ("role", "parts"))):
            resp.extra["content"] = rest
    meta = read(body, "usageMetadata")
    if isinstance(meta, dict):
        known = ("promptTokenCount", "candidatesTokenCount", "cachedContentTokenCount")
        if rest := rest_of(meta, (*known, "thoughtsTokenCount", "totalTokenCount")):
            resp.extra["usageMetadata"] = rest
    return resp


def render_response(
    resp: ir.Response, req: ir.Request, *, envelope: bool = False
) -> dict[str, Any]:
    """A Gemini response, or with ``envelope`` one inside Cloud Code's ``{"response": ...}``."""
    if envelope:
        out: dict[str, Any] = {"response": render_response(resp, req)}
        wrapper = resp.extra.get("envelope")
        if isinstance(wrapper, dict):
            out.update(wrapper)
        return out
    extra = dict(resp.extra)
    extra.pop("envelope", None)
    writer = PartWriter(None)
    content: dict[str, Any] = {"role": "model", "parts": writer.parts(resp.content, "content")}
    content.update(extra.pop("content", {}))
    candidate: dict[str, Any] = {"content": content}
    finish = extra.pop("finishReason", None)
    if resp.stop_reason is not None:
        mapped = (
            parse_stop_reason(finish, bool(resp.tool_calls())) if isinstance(finish, str) else None
        )
        candidate["finishReason"] = (
            finish if mapped == resp.stop_reason else _FINISH_FOR_STOP[resp.stop_reason]
        )
    candidate["index"] = 0
    candidate.update(extra.pop("candidate", {}))
    body: dict[str, Any] = {"candidates": [candidate]}
    usage_rest = extra.pop("usageMetadata", None)
    if resp.usage is not None:
        body["usageMetadata"] = render_usage(resp.usage, usage_rest)
    body["modelVersion"] = resp.model or req.model
    if resp.id:
        body["responseId"] = resp.id
    body.update(extra)
    return body


def mark_unfinished(rendered: dict[str, Any], *, envelope: bool = False) -> None:
    """A reply rendered from a stream that never ended: no candidate claims a finish reason."""
    inner = rendered.get("response", rendered) if envelope else rendered
    for candidate in inner.get("candidates") or []:
        candidate.pop("finishReason", None)
