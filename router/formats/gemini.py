"""Gemini ``generateContent`` wire format and the Cloud Code ``v1internal`` envelope around it.

The model is not in a Gemini body (it is in the URL path): the router injects it as
``body["model"]`` before :meth:`GeminiCodec.parse_request` (and ``body["stream"]`` for
``:streamGenerateContent``); :meth:`GeminiCodec.render_request` never writes either back.
Keys are accepted in camelCase and snake_case (the REST API takes both) and rendered camelCase.

Mapping choices worth knowing:

* A ``thoughtSignature`` on a part that is not a thought becomes a signature-only
  :class:`ir.ThinkingBlock` placed just before the block of that part; rendering attaches it to
  the next part again. Thinking from other providers is never sent to Gemini.
* ``functionCall`` ids are optional in Gemini. Missing ones get ``call_{name}_{n}`` (``n`` counts
  calls in order: per response, or across the whole conversation in a request, which keeps
  them unique and stable as the conversation grows). Such generated ids are not written back.
* ``functionResponse.response`` must be an object: text results travel as ``{"result": text}``
  (``{"error": text}`` when ``is_error``); a result that is itself a JSON object is sent as is.
"""

from __future__ import annotations

import json
import re
from collections import deque
from typing import Any, Literal

from router import ir
from router.errors import BadRequest, FieldError
from router.formats.base import StreamParser, StreamRenderer
from router.formats.sse import SSEParser, sse_bytes

ORIGIN = "gemini"
_GEMINI_SOURCES = ("gemini", "cloudcode")
# Google's documented placeholder for function calls whose signature was lost (history that
# came from another provider); Gemini 3 rejects model turns with unsigned function calls.
_SKIP_SIGNATURE = "skip_thought_signature_validator"
# Codec-private hints in Request.extra (only when a Gemini body deviates from the defaults).
_HINTS = "_gemini"

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
_EFFORT_LEVEL: dict[str, str] = {
    "none": "minimal",
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
}
# For pre-3 models, which take a token budget rather than a level.
_EFFORT_BUDGET: dict[str, int] = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
}
_LEVEL_EFFORT: dict[str, ir.Effort] = {
    "minimal": "minimal",
    "low": "low",
    "medium": "medium",
    "high": "high",
}
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


# --------------------------------------------------------------------------- small helpers


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()


def _get(d: dict[str, Any], camel: str) -> Any:
    """A field by its camelCase name, falling back to the snake_case spelling."""
    if camel in d:
        return d[camel]
    return d.get(_snake(camel))


def _rest(d: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    """The fields of ``d`` that are not in ``known`` (in either spelling)."""
    names = set(known) | {_snake(k) for k in known}
    return {k: v for k, v in d.items() if k not in names}


def _bad(path: str, message: str) -> BadRequest:
    return BadRequest(f"'{path}' {message}", [FieldError(path, message)])


def _field(
    d: dict[str, Any], camel: str, kind: type | tuple[type, ...], label: str, path: str
) -> Any:
    """An optional field, type-checked; ``None`` when absent."""
    value = _get(d, camel)
    if value is None:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _types(kind)):
        raise _bad(f"{path}{camel}", f"must be {label}")
    return value


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _is_generated_id(tool_id: str, name: str) -> bool:
    return re.fullmatch(rf"call_{re.escape(name)}_\d+", tool_id) is not None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def stop_reason_for(finish: str | None, saw_call: bool) -> ir.StopReason | None:
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


def usage_from_gemini(meta: dict[str, Any]) -> ir.Usage:
    """``usageMetadata`` -> IR usage (prompt includes cached; output includes thoughts)."""
    thoughts = _int(_get(meta, "thoughtsTokenCount"))
    return ir.Usage(
        input_tokens=_int(_get(meta, "promptTokenCount"))
        + _int(_get(meta, "toolUsePromptTokenCount")),
        output_tokens=_int(_get(meta, "candidatesTokenCount")) + thoughts,
        cache_read_tokens=_int(_get(meta, "cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def usage_to_gemini(usage: ir.Usage, rest: dict[str, Any] | None = None) -> dict[str, Any]:
    rest = rest or {}
    tool_prompt = _int(_get(rest, "toolUsePromptTokenCount"))
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


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _result_text(response: Any) -> tuple[str, bool]:
    """``functionResponse.response`` -> (text, is_error), unwrapping our own wrappers."""
    if isinstance(response, dict) and len(response) == 1:
        key, value = next(iter(response.items()))
        if key in ("result", "error") and isinstance(value, str):
            return value, key == "error"
    if isinstance(response, str):
        return response, False
    return _dumps(response), False


def _result_object(text: str, is_error: bool) -> dict[str, Any]:
    if is_error:
        return {"error": text}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict) and _result_text(value) == (_dumps(value), False):
        return value
    return {"result": text}


# --------------------------------------------------------------------------- request parsing


class _RequestParser:
    """Gemini request body -> IR, with field paths for errors (``prefix`` for envelopes)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.calls = 0
        self.pending: dict[str, deque[str]] = {}  # unanswered call ids per function name

    def parse(self, body: dict[str, Any], source: str) -> ir.Request:
        p = self.prefix
        model = body.get("model")
        if model is not None and not isinstance(model, str):
            raise _bad(f"{p}model", "must be a string")
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise _bad(f"{p}stream", "must be a boolean")
        contents = _get(body, "contents")
        if contents is None:
            raise BadRequest(
                f"'{p}contents' is required", [FieldError(f"{p}contents", "field required")]
            )
        if not isinstance(contents, list):
            raise _bad(f"{p}contents", "must be an array")
        req = ir.Request(model=model or "", stream=stream, source_format=source)
        hints: dict[str, Any] = {}
        for i, content in enumerate(contents):
            req.messages.append(self._content(content, f"{p}contents[{i}]"))
        system = _field(body, "systemInstruction", (dict, str), "an object", p)
        if isinstance(system, str):
            req.system.append(ir.TextBlock(text=system))
        elif system is not None:
            req.system = self._system(system, req, f"{p}systemInstruction")
        self._tools(body, req, hints)
        self._tool_config(body, req)
        self._generation_config(body, req, hints)
        known = (
            "model",
            "stream",
            "contents",
            "systemInstruction",
            "tools",
            "toolConfig",
            "generationConfig",
        )
        req.extra.update(_rest(body, known))
        if hints:
            req.extra[_HINTS] = hints
        return req

    def _content(self, content: Any, path: str) -> ir.Message:
        if not isinstance(content, dict):
            raise _bad(path, "must be an object")
        role = _field(content, "role", str, "a string", f"{path}.") or "user"
        if role not in ("user", "model", "function", "tool"):
            raise _bad(f"{path}.role", "must be 'user' or 'model'")
        parts = _get(content, "parts")
        if not isinstance(parts, list):
            raise _bad(f"{path}.parts", "must be an array")
        msg = ir.Message(role="assistant" if role == "model" else "user")
        for j, part in enumerate(parts):
            msg.content.extend(self._part(part, f"{path}.parts[{j}]"))
        return msg

    def _part(self, part: Any, path: str) -> list[ir.Block]:
        if not isinstance(part, dict):
            raise _bad(path, "must be an object")
        blocks: list[ir.Block] = []
        signature = _field(part, "thoughtSignature", str, "a string", f"{path}.")
        text = _field(part, "text", str, "a string", f"{path}.")
        if _get(part, "thought") is True:
            return [ir.ThinkingBlock(thinking=text or "", signature=signature, origin=ORIGIN)]
        if signature is not None:
            blocks.append(ir.ThinkingBlock(signature=signature, origin=ORIGIN))
        if text is not None:
            blocks.append(ir.TextBlock(text=text))
        elif (call := _field(part, "functionCall", dict, "an object", f"{path}.")) is not None:
            blocks.append(self._call(call, f"{path}.functionCall"))
        elif (
            result := _field(part, "functionResponse", dict, "an object", f"{path}.")
        ) is not None:
            blocks.append(self._result(result, f"{path}.functionResponse"))
        elif (inline := _field(part, "inlineData", dict, "an object", f"{path}.")) is not None:
            data = _field(inline, "data", str, "a string", f"{path}.inlineData.")
            if data is None:
                raise _bad(f"{path}.inlineData.data", "field required")
            blocks.append(ir.ImageBlock(media_type=_get(inline, "mimeType"), data=data))
        elif (file := _field(part, "fileData", dict, "an object", f"{path}.")) is not None:
            uri = _field(file, "fileUri", str, "a string", f"{path}.fileData.")
            if uri is None:
                raise _bad(f"{path}.fileData.fileUri", "field required")
            blocks.append(ir.ImageBlock(media_type=_get(file, "mimeType"), url=uri))
        elif (code := _code_text(part)) is not None:
            blocks.append(ir.TextBlock(text=code))
        elif signature is None:
            raise _bad(
                path, "must contain text, inlineData, fileData, functionCall or functionResponse"
            )
        return blocks

    def _call(self, call: dict[str, Any], path: str) -> ir.ToolUseBlock:
        name = _field(call, "name", str, "a string", f"{path}.")
        if not name:
            raise _bad(f"{path}.name", "field required")
        call_id = _field(call, "id", str, "a string", f"{path}.") or f"call_{name}_{self.calls}"
        self.calls += 1
        self.pending.setdefault(name, deque()).append(call_id)
        args = _get(call, "args")
        block = ir.ToolUseBlock(id=call_id, name=name)
        if isinstance(args, dict):
            block.input = args
        elif args is not None:
            block.raw_arguments = _dumps(args)
        return block

    def _result(self, result: dict[str, Any], path: str) -> ir.ToolResultBlock:
        name = _field(result, "name", str, "a string", f"{path}.")
        if not name:
            raise _bad(f"{path}.name", "field required")
        queue = self.pending.get(name, deque())
        result_id = _field(result, "id", str, "a string", f"{path}.")
        if result_id is not None:
            if result_id in queue:
                queue.remove(result_id)
        elif queue:
            result_id = queue.popleft()
        else:  # an answer to a call we never saw: still give it a stable id
            result_id = f"call_{name}_{self.calls}"
            self.calls += 1
        text, is_error = _result_text(_get(result, "response"))
        return ir.ToolResultBlock(
            tool_use_id=result_id, content=[ir.TextBlock(text=text)], is_error=is_error, name=name
        )

    def _system(self, system: dict[str, Any], req: ir.Request, path: str) -> list[ir.TextBlock]:
        parts = _get(system, "parts")
        if not isinstance(parts, list):
            raise _bad(f"{path}.parts", "must be an array")
        blocks: list[ir.TextBlock] = []
        for j, part in enumerate(parts):
            text = _get(part, "text") if isinstance(part, dict) else None
            if not isinstance(text, str):
                raise _bad(f"{path}.parts[{j}].text", "must be a string")
            blocks.append(ir.TextBlock(text=text))
        if "role" in system:
            req.extra["systemInstruction.role"] = system["role"]
        return blocks

    def _tools(self, body: dict[str, Any], req: ir.Request, hints: dict[str, Any]) -> None:
        p = self.prefix
        tools = _field(body, "tools", list, "an array", p)
        others: list[dict[str, Any]] = []
        for i, tool in enumerate(tools or []):
            if not isinstance(tool, dict):
                raise _bad(f"{p}tools[{i}]", "must be an object")
            decls = _field(tool, "functionDeclarations", list, "an array", f"{p}tools[{i}].")
            for j, decl in enumerate(decls or []):
                req.tools.append(
                    self._declaration(decl, f"{p}tools[{i}].functionDeclarations[{j}]", hints)
                )
            if rest := _rest(tool, ("functionDeclarations",)):
                others.append(rest)
        if others:
            req.extra["tools"] = others

    def _declaration(self, decl: Any, path: str, hints: dict[str, Any]) -> ir.Tool:
        if not isinstance(decl, dict):
            raise _bad(path, "must be an object")
        name = _field(decl, "name", str, "a string", f"{path}.")
        if not name:
            raise _bad(f"{path}.name", "field required")
        tool = ir.Tool(
            name=name, description=_field(decl, "description", str, "a string", f"{path}.")
        )
        schema = _field(decl, "parameters", dict, "an object", f"{path}.")
        json_schema = _field(decl, "parametersJsonSchema", dict, "an object", f"{path}.")
        if json_schema is not None:
            tool.parameters = json_schema
            hints.setdefault("jsonSchemaTools", []).append(name)
        elif schema is not None:
            tool.parameters = schema
        else:
            hints.setdefault("noSchemaTools", []).append(name)
        tool.extra = _rest(decl, ("name", "description", "parameters", "parametersJsonSchema"))
        return tool

    def _tool_config(self, body: dict[str, Any], req: ir.Request) -> None:
        p = self.prefix
        config = _field(body, "toolConfig", dict, "an object", p)
        if config is None:
            return
        fcc = _field(config, "functionCallingConfig", dict, "an object", f"{p}toolConfig.")
        rest = _rest(config, ("functionCallingConfig",))
        if fcc is not None:
            mode = str(_get(fcc, "mode") or "AUTO").upper()
            names = _get(fcc, "allowedFunctionNames")
            fcc_rest = _rest(fcc, ("mode", "allowedFunctionNames"))
            if mode == "NONE":
                req.tool_choice = ir.ToolChoice("none")
            elif mode == "ANY" and isinstance(names, list) and len(names) == 1:
                req.tool_choice = ir.ToolChoice("tool", str(names[0]))
                names = None
            elif mode == "ANY":
                req.tool_choice = ir.ToolChoice("required")
            else:
                req.tool_choice = ir.ToolChoice("auto")
                if mode != "AUTO":  # VALIDATED and future modes ride along
                    fcc_rest["mode"] = _get(fcc, "mode")
            if names is not None:
                fcc_rest["allowedFunctionNames"] = names
            if fcc_rest:
                rest["functionCallingConfig"] = fcc_rest
        if rest:
            req.extra["toolConfig"] = rest

    def _generation_config(
        self, body: dict[str, Any], req: ir.Request, hints: dict[str, Any]
    ) -> None:
        p = f"{self.prefix}generationConfig."
        gc = _field(body, "generationConfig", dict, "an object", self.prefix)
        if gc is None:
            return
        number = (int, float)
        req.temperature = _field(gc, "temperature", number, "a number", p)
        req.top_p = _field(gc, "topP", number, "a number", p)
        req.top_k = _field(gc, "topK", int, "an integer", p)
        req.max_tokens = _field(gc, "maxOutputTokens", int, "an integer", p)
        req.seed = _field(gc, "seed", int, "an integer", p)
        stop = _field(gc, "stopSequences", list, "an array", p)
        if stop is not None:
            if not all(isinstance(s, str) for s in stop):
                raise _bad(f"{p}stopSequences", "must be an array of strings")
            req.stop = list(stop)
        known = ["temperature", "topP", "topK", "maxOutputTokens", "seed", "stopSequences"]
        mime = _get(gc, "responseMimeType")
        schema = _get(gc, "responseSchema")
        json_schema = _get(gc, "responseJsonSchema")
        if mime == "application/json":
            known += ["responseMimeType", "responseSchema", "responseJsonSchema"]
            chosen = json_schema if json_schema is not None else schema
            if chosen is None:
                req.response_format = {"type": "json_object"}
            else:
                req.response_format = {
                    "type": "json_schema",
                    "json_schema": {"name": "response", "schema": chosen},
                }
                if json_schema is None:
                    hints["responseSchemaKey"] = "responseSchema"
        rest = _rest(gc, tuple(known))
        thinking = _field(gc, "thinkingConfig", dict, "an object", p)
        if thinking is not None:
            req.thinking_budget = _field(
                thinking, "thinkingBudget", int, "an integer", f"{p}thinkingConfig."
            )
            level = _field(thinking, "thinkingLevel", str, "a string", f"{p}thinkingConfig.")
            think_rest = _rest(thinking, ("thinkingBudget", "thinkingLevel"))
            if level is not None and level.lower() in _LEVEL_EFFORT:
                req.reasoning_effort = _LEVEL_EFFORT[level.lower()]
            elif level is not None:
                think_rest["thinkingLevel"] = level
            rest.pop("thinkingConfig", None)
            rest.pop("thinking_config", None)
            if think_rest:
                rest["thinkingConfig"] = think_rest
        if rest:
            req.extra["generationConfig"] = rest


def _code_text(part: dict[str, Any]) -> str | None:
    """Code-execution parts as readable text (the IR has no slot for them)."""
    code = _get(part, "executableCode")
    if isinstance(code, dict):
        lang = str(_get(code, "language") or "").lower().replace("language_unspecified", "")
        return f"```{lang}\n{_get(code, 'code') or ''}\n```"
    result = _get(part, "codeExecutionResult")
    if isinstance(result, dict):
        return str(_get(result, "output") or "")
    return None


# --------------------------------------------------------------------------- rendering parts


class _PartWriter:
    """IR blocks -> Gemini parts. A signature-only thinking block waits for the next part."""

    def __init__(self, dropped: list[str] | None) -> None:
        self.dropped = dropped
        self.names: dict[str, str] = {}  # tool_use_id -> function name, for tool results

    def parts(self, blocks: list[ir.Block], where: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        signature: str | None = None
        for k, block in enumerate(blocks):
            part: dict[str, Any] | None = None
            match block:
                case ir.ThinkingBlock():
                    if block.origin != ORIGIN or block.redacted:
                        self._drop("thinking")
                        continue
                    if not block.thinking:
                        signature = block.signature or signature
                        continue
                    part = {"text": block.thinking, "thought": True}
                    if block.signature:
                        part["thoughtSignature"] = block.signature
                    out.append(part)
                    continue
                case ir.TextBlock():
                    if block.cache_control is not None:
                        self._drop("cache_control")
                    part = {"text": block.text}
                case ir.ImageBlock():
                    part = _image_part(block)
                case ir.ToolUseBlock():
                    self.names[block.id] = block.name
                    call: dict[str, Any] = {"name": block.name, "args": _call_args(block)}
                    if block.id and not _is_generated_id(block.id, block.name):
                        call["id"] = block.id
                    part = {"functionCall": call}
                case ir.ToolResultBlock():
                    part = {"functionResponse": self._result(block, f"{where}[{k}]")}
                case _:
                    continue
            if signature is not None:
                part["thoughtSignature"] = signature
                signature = None
            out.append(part)
        if signature is not None:
            out.append({"text": "", "thoughtSignature": signature})
        return out

    def _result(self, block: ir.ToolResultBlock, where: str) -> dict[str, Any]:
        name = block.name or self.names.get(block.tool_use_id)
        if not name:
            raise _bad(f"{where}.tool_use_id", f"no earlier tool call has id '{block.tool_use_id}'")
        if any(isinstance(b, ir.ImageBlock) for b in block.content):
            self._drop("tool_result.image")
        out: dict[str, Any] = {
            "name": name,
            "response": _result_object(block.text(), block.is_error),
        }
        if block.tool_use_id and not _is_generated_id(block.tool_use_id, name):
            out["id"] = block.tool_use_id
        return out

    def _drop(self, what: str) -> None:
        if self.dropped is not None and what not in self.dropped:
            self.dropped.append(what)


def _call_args(block: ir.ToolUseBlock) -> Any:
    if block.raw_arguments is not None:
        try:
            return json.loads(block.raw_arguments)
        except ValueError:
            return {}  # Gemini cannot carry arguments that are not JSON
    return block.input


def _image_part(block: ir.ImageBlock) -> dict[str, Any]:
    if block.data is not None:
        return {"inlineData": {"mimeType": block.media_type or "image/png", "data": block.data}}
    url = block.url or ""
    if url.startswith("data:") and ";base64," in url:
        head, _, data = url.partition(";base64,")
        return {"inlineData": {"mimeType": head[5:] or "image/png", "data": data}}
    file: dict[str, Any] = {"fileUri": url}
    if block.media_type:
        file["mimeType"] = block.media_type
    return {"fileData": file}


# --------------------------------------------------------------------------- response events


class _EventBuilder:
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
        meta = _get(data, "usageMetadata")
        if isinstance(meta, dict):
            self.usage = usage_from_gemini(meta)
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
                    id=str(_get(data, "responseId") or ""),
                    model=str(_get(data, "modelVersion") or ""),
                    usage=start_usage,
                )
            )
        candidate = _first_candidate(data)
        if candidate is None:
            feedback = _get(data, "promptFeedback")
            if isinstance(feedback, dict) and _get(feedback, "blockReason"):
                self.blocked = True
            return out
        content = _get(candidate, "content")
        parts = _get(content, "parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, dict):
                self._part(part, out)
        finish = _get(candidate, "finishReason")
        if isinstance(finish, str):
            self.finish = finish
            self._close(out)
        return out

    def end(self) -> list[ir.StreamEvent]:
        if not self.finished:
            return [ir.ErrorEvent("Gemini stream ended without a finishReason", "api_error")]
        out: list[ir.StreamEvent] = []
        self._close(out)
        stop = "content_filter" if self.blocked else stop_reason_for(self.finish, self.calls > 0)
        out.append(ir.MessageDelta(stop_reason=stop, usage=self.usage))
        out.append(ir.MessageStop())
        return out

    def _part(self, part: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        signature = _get(part, "thoughtSignature")
        signature = signature if isinstance(signature, str) and signature else None
        text = _get(part, "text")
        if _get(part, "thought") is True:
            if isinstance(text, str) and text:
                self._extend("thinking", "thinking", text, out, fresh=self.open_signed)
            if signature is not None:
                self._extend("thinking", "signature", signature, out, fresh=self.open_signed)
                self.open_signed = True
            return
        if signature is not None:
            index = self._start(ir.ThinkingBlock(origin=ORIGIN), out)
            out.append(ir.BlockDelta(index, "signature", signature))
            self._close(out)
        if not isinstance(text, str):
            text = _code_text(part)
        if isinstance(text, str):
            if text:
                self._extend("text", "text", text, out, fresh=False)
            return
        call = _get(part, "functionCall")
        if isinstance(call, dict):
            name = str(_get(call, "name") or "")
            call_id = _get(call, "id")
            block = ir.ToolUseBlock(
                id=call_id if isinstance(call_id, str) and call_id else f"call_{name}_{self.calls}",
                name=name,
            )
            self.calls += 1
            index = self._start(block, out)
            args = _get(call, "args")
            out.append(ir.BlockDelta(index, "input_json", _dumps({} if args is None else args)))
            self._close(out)
            return
        inline, file = _get(part, "inlineData"), _get(part, "fileData")
        if isinstance(inline, dict):
            image = ir.ImageBlock(media_type=_get(inline, "mimeType"), data=_get(inline, "data"))
        elif isinstance(file, dict):
            image = ir.ImageBlock(media_type=_get(file, "mimeType"), url=_get(file, "fileUri"))
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
            block: ir.Block = ir.TextBlock() if kind == "text" else ir.ThinkingBlock(origin=ORIGIN)
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


def _first_candidate(data: dict[str, Any]) -> dict[str, Any] | None:
    candidates = _get(data, "candidates")
    if not isinstance(candidates, list):
        return None
    for candidate in candidates:
        if isinstance(candidate, dict) and _get(candidate, "index") in (None, 0):
            return candidate
    return None


# --------------------------------------------------------------------------- streams


class GeminiStreamParser:
    """``data: {chunk}`` SSE -> IR events; ``envelope`` unwraps Cloud Code's ``{"response": ...}``."""

    def __init__(self, envelope: bool = False) -> None:
        self.envelope = envelope
        self.sse = SSEParser()
        self.builder = _EventBuilder()
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
            data = json.loads(raw)
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


class GeminiStreamRenderer:
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
                    return self._chunk([_image_part(event.block)])
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
        foreign = isinstance(block, ir.ThinkingBlock) and block.origin not in (None, ORIGIN)
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
        call: dict[str, Any] = {"name": tool.name, "args": _call_args(tool)}
        if tool.id and not _is_generated_id(tool.id, tool.name):
            call["id"] = tool.id
        return self._chunk([{"functionCall": call}])

    def _final(self) -> bytes:
        self.done = True
        parts: list[dict[str, Any]] = [{"text": ""}]
        candidate: dict[str, Any] = {
            "content": {"role": "model", "parts": parts},
            "finishReason": _FINISH_FOR_STOP.get(self.stop or "end_turn", "STOP"),
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
            chunk["usageMetadata"] = usage_to_gemini(self.usage)
        chunk["modelVersion"] = self.model
        if self.id:
            chunk["responseId"] = self.id
        return sse_bytes({"response": chunk} if self.envelope else chunk)


# --------------------------------------------------------------------------- the codecs


class GeminiCodec:
    """The Gemini ``generateContent`` format."""

    name = "gemini"
    envelope = False

    # ---- requests

    def parse_request(self, body: dict[str, Any]) -> ir.Request:
        if not isinstance(body, dict):
            raise _bad("body", "must be a JSON object")
        return _RequestParser("").parse(body, self.name)

    def render_request(self, req: ir.Request) -> dict[str, Any]:
        same = req.source_format in _GEMINI_SOURCES
        hints: dict[str, Any] = req.extra.get(_HINTS, {}) if same else {}
        writer = _PartWriter(req.dropped)
        body: dict[str, Any] = {"contents": self._contents(req, writer, same)}
        system = [{"text": b.text} for b in req.system]
        for msg in req.messages:
            if msg.role == "system":
                system.append({"text": msg.text()})
        if system:
            body["systemInstruction"] = {"parts": system}
            if same and "systemInstruction.role" in req.extra:
                body["systemInstruction"]["role"] = req.extra["systemInstruction.role"]
        tools = self._tools(req, hints, same)
        if tools:
            body["tools"] = tools
        tool_config = self._tool_config(req, same)
        if tool_config:
            body["toolConfig"] = tool_config
        generation = self._generation_config(req, hints, same)
        if generation:
            body["generationConfig"] = generation
        if req.parallel_tool_calls is False:
            self._dropped(req, "parallel_tool_calls")
        for name in ("user", "metadata"):
            if getattr(req, name):
                self._dropped(req, name)
        for key, value in req.extra.items():
            if same and key in (
                _HINTS,
                "systemInstruction.role",
                "tools",
                "toolConfig",
                "generationConfig",
            ):
                continue
            if not same or key == "envelope":
                self._dropped(req, key)
            else:
                body[key] = value
        return body

    def _contents(self, req: ir.Request, writer: _PartWriter, same: bool) -> list[dict[str, Any]]:
        contents: list[dict[str, Any]] = []
        sign_calls = not same and "gemini-3" in req.model
        for i, msg in enumerate(req.messages):
            if msg.role == "system":
                continue
            role = "model" if msg.role == "assistant" else "user"
            parts = writer.parts(msg.content, f"messages[{i}].content")
            if role == "model" and sign_calls:
                calls = [p for p in parts if "functionCall" in p]
                if calls and "thoughtSignature" not in calls[0]:
                    calls[0]["thoughtSignature"] = _SKIP_SIGNATURE
            # Parallel tool results arrive as separate tool messages elsewhere; Gemini wants
            # all the answers to one turn in one content.
            if not same and contents and contents[-1]["role"] == role:
                contents[-1]["parts"].extend(parts)
            else:
                contents.append({"role": role, "parts": parts})
        return contents

    def _tools(self, req: ir.Request, hints: dict[str, Any], same: bool) -> list[dict[str, Any]]:
        decls: list[dict[str, Any]] = []
        for tool in req.tools:
            decl: dict[str, Any] = {"name": tool.name}
            if tool.description is not None:
                decl["description"] = tool.description
            if not same or tool.name in hints.get("jsonSchemaTools", ()):
                # Full JSON Schema: the OpenAPI subset of `parameters` rejects keys that
                # other providers' schemas use freely (additionalProperties, $schema, ...).
                decl["parametersJsonSchema"] = tool.parameters
            elif tool.name not in hints.get("noSchemaTools", ()):
                decl["parameters"] = tool.parameters
            if same:
                decl.update(tool.extra)
            elif tool.extra:
                self._dropped(req, f"tools.{tool.name}.extra")
            decls.append(decl)
        out: list[dict[str, Any]] = [{"functionDeclarations": decls}] if decls else []
        if same:
            out.extend(req.extra.get("tools", []))
        return out

    def _tool_config(self, req: ir.Request, same: bool) -> dict[str, Any]:
        config: dict[str, Any] = {}
        choice = req.tool_choice
        if choice is not None:
            fcc: dict[str, Any] = {"mode": {"auto": "AUTO", "none": "NONE"}.get(choice.mode, "ANY")}
            if choice.mode == "tool" and choice.name:
                fcc["allowedFunctionNames"] = [choice.name]
            config["functionCallingConfig"] = fcc
        rest = req.extra.get("toolConfig") if same else None
        if isinstance(rest, dict):
            for key, value in rest.items():
                if isinstance(value, dict) and isinstance(config.get(key), dict):
                    config[key] = {**config[key], **value}
                else:
                    config[key] = value
        return config

    def _generation_config(
        self, req: ir.Request, hints: dict[str, Any], same: bool
    ) -> dict[str, Any]:
        gc: dict[str, Any] = {}
        for key, value in (
            ("temperature", req.temperature),
            ("topP", req.top_p),
            ("topK", req.top_k),
            ("maxOutputTokens", req.max_tokens),
            ("seed", req.seed),
        ):
            if value is not None:
                gc[key] = value
        if req.stop:
            gc["stopSequences"] = list(req.stop)
        fmt = req.response_format
        if fmt is not None and fmt.get("type") in ("json_object", "json_schema"):
            gc["responseMimeType"] = "application/json"
            spec = fmt.get("json_schema")
            if fmt.get("type") == "json_schema" and isinstance(spec, dict) and "schema" in spec:
                gc[hints.get("responseSchemaKey", "responseJsonSchema")] = spec["schema"]
        thinking: dict[str, Any] = {}
        if req.thinking_budget is not None:
            thinking["thinkingBudget"] = req.thinking_budget
        if req.reasoning_effort is not None and req.thinking_budget is None:
            if same or "gemini-3" in req.model:
                thinking["thinkingLevel"] = _EFFORT_LEVEL[req.reasoning_effort]
            else:
                thinking["thinkingBudget"] = _EFFORT_BUDGET[req.reasoning_effort]
        if not same and thinking and (req.thinking_budget or 0) > 0:
            thinking["includeThoughts"] = True  # the client asked to see the thinking
        rest = dict(req.extra.get("generationConfig", {})) if same else {}
        if thinking or "thinkingConfig" in rest:
            thinking.update(rest.pop("thinkingConfig", {}))
            gc["thinkingConfig"] = thinking
        gc.update(rest)
        return gc

    @staticmethod
    def _dropped(req: ir.Request, name: str) -> None:
        if name not in req.dropped:
            req.dropped.append(name)

    # ---- responses

    def parse_response(self, body: dict[str, Any]) -> ir.Response:
        if not isinstance(body, dict):
            raise _bad("body", "must be a JSON object")
        candidates = _get(body, "candidates")
        if candidates is not None and not isinstance(candidates, list):
            raise _bad("candidates", "must be an array")
        builder = _EventBuilder()
        acc = ir.StreamAccumulator()
        acc.feed_all(builder.chunk(body))
        if not builder.finished:
            builder.finish = "STOP"  # a whole response is complete even without a reason
        acc.feed_all(builder.end())
        resp = acc.result()
        resp.extra = _rest(body, ("candidates", "usageMetadata", "modelVersion", "responseId"))
        candidate = _first_candidate(body)
        if candidate is not None:
            if rest := _rest(candidate, ("content", "finishReason", "index")):
                resp.extra["candidate"] = rest
            finish = _get(candidate, "finishReason")
            if isinstance(finish, str) and finish != _FINISH_FOR_STOP.get(resp.stop_reason or ""):
                resp.extra["finishReason"] = finish
            content = _get(candidate, "content")
            if isinstance(content, dict) and (rest := _rest(content, ("role", "parts"))):
                resp.extra["content"] = rest
        meta = _get(body, "usageMetadata")
        if isinstance(meta, dict):
            known = ("promptTokenCount", "candidatesTokenCount", "cachedContentTokenCount")
            if rest := _rest(meta, (*known, "thoughtsTokenCount", "totalTokenCount")):
                resp.extra["usageMetadata"] = rest
        return resp

    def render_response(self, resp: ir.Response, req: ir.Request) -> dict[str, Any]:
        extra = dict(resp.extra)
        extra.pop("envelope", None)
        writer = _PartWriter(None)
        content: dict[str, Any] = {"role": "model", "parts": writer.parts(resp.content, "content")}
        content.update(extra.pop("content", {}))
        candidate: dict[str, Any] = {"content": content}
        finish = extra.pop("finishReason", None)
        if resp.stop_reason is not None:
            mapped = (
                stop_reason_for(finish, bool(resp.tool_calls()))
                if isinstance(finish, str)
                else None
            )
            candidate["finishReason"] = (
                finish if mapped == resp.stop_reason else _FINISH_FOR_STOP[resp.stop_reason]
            )
        candidate["index"] = 0
        candidate.update(extra.pop("candidate", {}))
        body: dict[str, Any] = {"candidates": [candidate]}
        usage_rest = extra.pop("usageMetadata", None)
        if resp.usage is not None:
            body["usageMetadata"] = usage_to_gemini(resp.usage, usage_rest)
        body["modelVersion"] = resp.model or req.model
        if resp.id:
            body["responseId"] = resp.id
        body.update(extra)
        return body

    # ---- streams and errors

    def stream_parser(self) -> StreamParser:
        return GeminiStreamParser(envelope=self.envelope)

    def stream_renderer(self, req: ir.Request) -> StreamRenderer:
        return GeminiStreamRenderer(req, envelope=self.envelope)

    def error_event(self, message: str, error_type: str = "api_error") -> bytes:
        return sse_bytes(_error_body(message, error_type))


class CloudCodeCodec(GeminiCodec):
    """Cloud Code ``v1internal``: a Gemini request inside ``{model, project, ..., request}``,
    responses and stream chunks inside ``{"response": ...}``."""

    name = "cloudcode"
    envelope = True

    def parse_request(self, body: dict[str, Any]) -> ir.Request:
        if not isinstance(body, dict):
            raise _bad("body", "must be a JSON object")
        inner = body.get("request")
        if inner is None:
            raise BadRequest("'request' is required", [FieldError("request", "field required")])
        if not isinstance(inner, dict):
            raise _bad("request", "must be an object")
        model = body.get("model")
        if model is not None and not isinstance(model, str):
            raise _bad("model", "must be a string")
        inner = {**inner, "model": model, "stream": body.get("stream", False)}
        req = _RequestParser("request.").parse(inner, self.name)
        if envelope := {k: v for k, v in body.items() if k not in ("model", "request", "stream")}:
            req.extra["envelope"] = envelope
        return req

    def render_request(self, req: ir.Request) -> dict[str, Any]:
        inner = super().render_request(req)
        body: dict[str, Any] = {"model": req.model}
        if req.source_format == self.name:
            body.update(req.extra.get("envelope", {}))
        body["request"] = inner
        return body

    def parse_response(self, body: dict[str, Any]) -> ir.Response:
        inner = body.get("response") if isinstance(body, dict) else None
        if not isinstance(inner, dict):
            return super().parse_response(body)  # tolerate a bare Gemini body
        resp = super().parse_response(inner)
        if envelope := {k: v for k, v in body.items() if k != "response"}:
            resp.extra["envelope"] = envelope
        return resp

    def render_response(self, resp: ir.Response, req: ir.Request) -> dict[str, Any]:
        body: dict[str, Any] = {"response": super().render_response(resp, req)}
        envelope = resp.extra.get("envelope")
        if isinstance(envelope, dict):
            body.update(envelope)
        return body


CODEC = GeminiCodec()
CLOUDCODE_CODEC = CloudCodeCodec()
