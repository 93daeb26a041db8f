"""Gemini requests: parse a client's body into the IR, render the IR for Gemini or Cloud Code."""

from __future__ import annotations

from collections import deque
from typing import Any

from router import ir
from router.errors import BadRequest, FieldError
from router.formats.common import add_dropped
from router.formats.gemini import CLOUDCODE, NAME, SOURCES
from router.formats.gemini.parts import (
    PartWriter,
    bad,
    code_text,
    dumps,
    optional_field,
    read,
    rest_of,
    result_text,
)
from router.formats.tools import tool_name

# Google's documented placeholder for function calls whose signature was lost (history that
# came from another provider); Gemini 3 rejects model turns with unsigned function calls.
_SKIP_SIGNATURE = "skip_thought_signature_validator"
# Codec-private hints in Request.extra (only when a Gemini body deviates from the defaults).
_HINTS = "_gemini"


# --------------------------------------------------------------------------- request parsing


def parse_request(body: dict[str, Any], *, envelope: bool = False) -> ir.Request:
    """A Gemini body, or with ``envelope`` a Cloud Code ``{model, project, ..., request}``."""
    if not isinstance(body, dict):
        raise bad("body", "must be a JSON object")
    if not envelope:
        return _RequestParser("").parse(body, NAME)
    inner = body.get("request")
    if inner is None:
        raise BadRequest("'request' is required", [FieldError("request", "field required")])
    if not isinstance(inner, dict):
        raise bad("request", "must be an object")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise bad("model", "must be a string")
    inner = {**inner, "model": model, "stream": body.get("stream", False)}
    req = _RequestParser("request.").parse(inner, CLOUDCODE)
    if wrapper := {k: v for k, v in body.items() if k not in ("model", "request", "stream")}:
        req.extra["envelope"] = wrapper
    return req


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
            raise bad(f"{p}model", "must be a string")
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise bad(f"{p}stream", "must be a boolean")
        contents = read(body, "contents")
        if contents is None:
            raise BadRequest(
                f"'{p}contents' is required", [FieldError(f"{p}contents", "field required")]
            )
        if not isinstance(contents, list):
            raise bad(f"{p}contents", "must be an array")
        req = ir.Request(model=model or "", stream=stream, source_format=source)
        hints: dict[str, Any] = {}
        for i, content in enumerate(contents):
            req.messages.append(self._content(content, f"{p}contents[{i}]"))
        system = optional_field(body, "systemInstruction", (dict, str), "an object", p)
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
        req.extra.update(rest_of(body, known))
        if hints:
            req.extra[_HINTS] = hints
        return req

    def _content(self, content: Any, path: str) -> ir.Message:
        if not isinstance(content, dict):
            raise bad(path, "must be an object")
        role = optional_field(content, "role", str, "a string", f"{path}.") or "user"
        if role not in ("user", "model", "function", "tool"):
            raise bad(f"{path}.role", "must be 'user' or 'model'")
        parts = read(content, "parts")
        if not isinstance(parts, list):
            raise bad(f"{path}.parts", "must be an array")
        msg = ir.Message(role="assistant" if role == "model" else "user")
        for j, part in enumerate(parts):
            msg.content.extend(self._part(part, f"{path}.parts[{j}]"))
        return msg

    def _part(self, part: Any, path: str) -> list[ir.Block]:
        if not isinstance(part, dict):
            raise bad(path, "must be an object")
        blocks: list[ir.Block] = []
        signature = optional_field(part, "thoughtSignature", str, "a string", f"{path}.")
        text = optional_field(part, "text", str, "a string", f"{path}.")
        if read(part, "thought") is True:
            return [ir.ThinkingBlock(thinking=text or "", signature=signature, origin=NAME)]
        if signature is not None:
            blocks.append(ir.ThinkingBlock(signature=signature, origin=NAME))
        if text is not None:
            blocks.append(ir.TextBlock(text=text))
        elif (
            call := optional_field(part, "functionCall", dict, "an object", f"{path}.")
        ) is not None:
            blocks.append(self._call(call, f"{path}.functionCall"))
        elif (
            result := optional_field(part, "functionResponse", dict, "an object", f"{path}.")
        ) is not None:
            blocks.append(self._result(result, f"{path}.functionResponse"))
        elif (
            inline := optional_field(part, "inlineData", dict, "an object", f"{path}.")
        ) is not None:
            data = optional_field(inline, "data", str, "a string", f"{path}.inlineData.")
            if data is None:
                raise bad(f"{path}.inlineData.data", "field required")
            blocks.append(ir.ImageBlock(media_type=read(inline, "mimeType"), data=data))
        elif (file := optional_field(part, "fileData", dict, "an object", f"{path}.")) is not None:
            uri = optional_field(file, "fileUri", str, "a string", f"{path}.fileData.")
            if uri is None:
                raise bad(f"{path}.fileData.fileUri", "field required")
            blocks.append(ir.ImageBlock(media_type=read(file, "mimeType"), url=uri))
        elif (code := code_text(part)) is not None:
            blocks.append(ir.TextBlock(text=code))
        elif signature is None:
            raise bad(
                path, "must contain text, inlineData, fileData, functionCall or functionResponse"
            )
        return blocks

    def _call(self, call: dict[str, Any], path: str) -> ir.ToolUseBlock:
        name = optional_field(call, "name", str, "a string", f"{path}.")
        if not name:
            raise bad(f"{path}.name", "field required")
        call_id = (
            optional_field(call, "id", str, "a string", f"{path}.") or f"call_{name}_{self.calls}"
        )
        self.calls += 1
        self.pending.setdefault(name, deque()).append(call_id)
        args = read(call, "args")
        block = ir.ToolUseBlock(id=call_id, name=name)
        if isinstance(args, dict):
            block.input = args
        elif args is not None:
            block.raw_arguments = dumps(args)
        return block

    def _result(self, result: dict[str, Any], path: str) -> ir.ToolResultBlock:
        name = optional_field(result, "name", str, "a string", f"{path}.")
        if not name:
            raise bad(f"{path}.name", "field required")
        queue = self.pending.get(name, deque())
        result_id = optional_field(result, "id", str, "a string", f"{path}.")
        if result_id is not None:
            if result_id in queue:
                queue.remove(result_id)
        elif queue:
            result_id = queue.popleft()
        else:  # an answer to a call we never saw: still give it a stable id
            result_id = f"call_{name}_{self.calls}"
            self.calls += 1
        text, is_error = result_text(read(result, "response"))
        return ir.ToolResultBlock(
            tool_use_id=result_id, content=[ir.TextBlock(text=text)], is_error=is_error, name=name
        )

    def _system(self, system: dict[str, Any], req: ir.Request, path: str) -> list[ir.TextBlock]:
        parts = read(system, "parts")
        if not isinstance(parts, list):
            raise bad(f"{path}.parts", "must be an array")
        blocks: list[ir.TextBlock] = []
        for j, part in enumerate(parts):
            text = read(part, "text") if isinstance(part, dict) else None
            if not isinstance(text, str):
                raise bad(f"{path}.parts[{j}].text", "must be a string")
            blocks.append(ir.TextBlock(text=text))
        if "role" in system:
            req.extra["systemInstruction.role"] = system["role"]
        return blocks

    def _tools(self, body: dict[str, Any], req: ir.Request, hints: dict[str, Any]) -> None:
        p = self.prefix
        tools = optional_field(body, "tools", list, "an array", p)
        others: list[dict[str, Any]] = []
        for i, tool in enumerate(tools or []):
            if not isinstance(tool, dict):
                raise bad(f"{p}tools[{i}]", "must be an object")
            decls = optional_field(
                tool, "functionDeclarations", list, "an array", f"{p}tools[{i}]."
            )
            for j, decl in enumerate(decls or []):
                req.tools.append(
                    self._declaration(decl, f"{p}tools[{i}].functionDeclarations[{j}]", hints)
                )
            if rest := rest_of(tool, ("functionDeclarations",)):
                others.append(rest)
        if others:
            req.extra["tools"] = others

    def _declaration(self, decl: Any, path: str, hints: dict[str, Any]) -> ir.Tool:
        if not isinstance(decl, dict):
            raise bad(path, "must be an object")
        name = optional_field(decl, "name", str, "a string", f"{path}.")
        if not name:
            raise bad(f"{path}.name", "field required")
        tool = ir.Tool(
            name=name, description=optional_field(decl, "description", str, "a string", f"{path}.")
        )
        schema = optional_field(decl, "parameters", dict, "an object", f"{path}.")
        json_schema = optional_field(decl, "parametersJsonSchema", dict, "an object", f"{path}.")
        if json_schema is not None:
            tool.parameters = json_schema
            hints.setdefault("jsonSchemaTools", []).append(name)
        elif schema is not None:
            tool.parameters = schema
        else:
            hints.setdefault("noSchemaTools", []).append(name)
        tool.extra = rest_of(decl, ("name", "description", "parameters", "parametersJsonSchema"))
        return tool

    def _tool_config(self, body: dict[str, Any], req: ir.Request) -> None:
        p = self.prefix
        config = optional_field(body, "toolConfig", dict, "an object", p)
        if config is None:
            return
        fcc = optional_field(config, "functionCallingConfig", dict, "an object", f"{p}toolConfig.")
        rest = rest_of(config, ("functionCallingConfig",))
        if fcc is not None:
            mode = str(read(fcc, "mode") or "AUTO").upper()
            names = read(fcc, "allowedFunctionNames")
            fcc_rest = rest_of(fcc, ("mode", "allowedFunctionNames"))
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
                    fcc_rest["mode"] = read(fcc, "mode")
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
        gc = optional_field(body, "generationConfig", dict, "an object", self.prefix)
        if gc is None:
            return
        number = (int, float)
        req.temperature = optional_field(gc, "temperature", number, "a number", p)
        req.top_p = optional_field(gc, "topP", number, "a number", p)
        req.top_k = optional_field(gc, "topK", int, "an integer", p)
        req.max_tokens = optional_field(gc, "maxOutputTokens", int, "an integer", p)
        req.seed = optional_field(gc, "seed", int, "an integer", p)
        stop = optional_field(gc, "stopSequences", list, "an array", p)
        if stop is not None:
            if not all(isinstance(s, str) for s in stop):
                raise bad(f"{p}stopSequences", "must be an array of strings")
            req.stop = list(stop)
        known = ["temperature", "topP", "topK", "maxOutputTokens", "seed", "stopSequences"]
        mime = read(gc, "responseMimeType")
        schema = read(gc, "responseSchema")
        json_schema = read(gc, "responseJsonSchema")
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
        rest = rest_of(gc, tuple(known))
        thinking = optional_field(gc, "thinkingConfig", dict, "an object", p)
        if thinking is not None:
            req.thinking_budget = optional_field(
                thinking, "thinkingBudget", int, "an integer", f"{p}thinkingConfig."
            )
            level = optional_field(
                thinking, "thinkingLevel", str, "a string", f"{p}thinkingConfig."
            )
            think_rest = rest_of(thinking, ("thinkingBudget", "thinkingLevel"))
            if level is not None and level.lower() in ir.LEVEL_EFFORT:
                req.reasoning_effort = ir.LEVEL_EFFORT[level.lower()]
            elif req.thinking_budget is not None and req.thinking_budget > 0:
                # As Anthropic's budget does: formats that take an effort get one.
                req.reasoning_effort = ir.effort_for_budget(req.thinking_budget)
            elif level is not None:
                think_rest["thinkingLevel"] = level
            rest.pop("thinkingConfig", None)
            rest.pop("thinking_config", None)
            if think_rest:
                rest["thinkingConfig"] = think_rest
        if rest:
            req.extra["generationConfig"] = rest


# --------------------------------------------------------------------------- request rendering


def render_request(req: ir.Request, *, envelope: bool = False) -> dict[str, Any]:
    """A Gemini body, or with ``envelope`` a Cloud Code one (model outside, body in ``request``)."""
    if not envelope:
        return _render_gemini(req)
    body: dict[str, Any] = {"model": req.model}
    if req.source_format == CLOUDCODE:
        body.update(req.extra.get("envelope", {}))
    body["request"] = _render_gemini(req)
    return body


def _render_gemini(req: ir.Request) -> dict[str, Any]:
    same = req.source_format in SOURCES
    hints: dict[str, Any] = req.extra.get(_HINTS, {}) if same else {}
    writer = PartWriter(req.dropped)
    body: dict[str, Any] = {"contents": _render_contents(req, writer, same)}
    system = [{"text": b.text} for b in req.system]
    for msg in req.messages:
        if msg.role == "system":
            system.append({"text": msg.text()})
    if system:
        body["systemInstruction"] = {"parts": system}
        if same and "systemInstruction.role" in req.extra:
            body["systemInstruction"]["role"] = req.extra["systemInstruction.role"]
    tools = _render_tools(req, hints, same)
    if tools:
        body["tools"] = tools
    tool_config = _render_tool_config(req, same)
    if tool_config:
        body["toolConfig"] = tool_config
    generation = _render_generation_config(req, hints, same)
    if generation:
        body["generationConfig"] = generation
    if req.parallel_tool_calls is False:
        add_dropped(req, "parallel_tool_calls")
    for name in ("user", "metadata"):
        if getattr(req, name):
            add_dropped(req, name)
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
            add_dropped(req, key)
        else:
            body[key] = value
    return body


def _render_contents(req: ir.Request, writer: PartWriter, same: bool) -> list[dict[str, Any]]:
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


def _render_tools(req: ir.Request, hints: dict[str, Any], same: bool) -> list[dict[str, Any]]:
    decls: list[dict[str, Any]] = []
    for tool in req.tools:
        decl: dict[str, Any] = {"name": tool_name(tool)}
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
            add_dropped(req, f"tools.{tool.name}.extra")
        decls.append(decl)
    out: list[dict[str, Any]] = [{"functionDeclarations": decls}] if decls else []
    if same:
        out.extend(req.extra.get("tools", []))
    return out


def _render_tool_config(req: ir.Request, same: bool) -> dict[str, Any]:
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


def _render_generation_config(req: ir.Request, hints: dict[str, Any], same: bool) -> dict[str, Any]:
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
            thinking["thinkingLevel"] = ir.EFFORT_LEVEL[req.reasoning_effort]
        else:
            thinking["thinkingBudget"] = ir.budget_for_effort(req.reasoning_effort)  # pre-3 models
    if not same and thinking and (req.thinking_budget or 0) > 0:
        thinking["includeThoughts"] = True  # the client asked to see the thinking
    rest = dict(req.extra.get("generationConfig", {})) if same else {}
    if thinking or "thinkingConfig" in rest:
        thinking.update(rest.pop("thinkingConfig", {}))
        gc["thinkingConfig"] = thinking
    gc.update(rest)
    return gc
