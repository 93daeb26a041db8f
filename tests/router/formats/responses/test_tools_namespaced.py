"""Codex's tools: an ``additional_tools`` input item holding namespaces of function and custom
(free-form, grammar) tools, carried into every format and the model's calls mapped back."""

from __future__ import annotations

import copy
import json
from typing import Any

import pydantic
import pytest
from openai.types.responses import Response, ResponseInputItemParam, ResponseStreamEvent

from router import ir
from router.formats import get_codec
from router.formats.responses.codec import CODEC
from tests.agents import golden
from tests.router.formats.shared import accumulate, parse_pieces

GRAMMAR = {"type": "grammar", "syntax": "lark", "definition": "start: /[\\s\\S]+/"}
TOOLS_ITEM: dict[str, Any] = {
    "type": "additional_tools",
    "id": "at_1",
    "role": "developer",
    "tools": [
        {
            "type": "namespace",
            "name": "functions",
            "description": "",
            "tools": [
                {"type": "custom", "name": "exec", "description": "Run JS", "format": GRAMMAR},
                {
                    "type": "function",
                    "name": "wait",
                    "description": "Wait on a cell",
                    "strict": False,
                    "parameters": {
                        "type": "object",
                        "properties": {"cell_id": {"type": "string"}},
                        "required": ["cell_id"],
                    },
                },
            ],
        },
        {
            "type": "namespace",
            "name": "clock",
            "description": "Time tools.",
            "tools": [
                {
                    "type": "function",
                    "name": "sleep",
                    "strict": False,
                    "parameters": {"type": "object", "properties": {"ms": {"type": "number"}}},
                }
            ],
        },
    ],
}
FLAT = {"exec", "wait", "clock__sleep"}


def codex_body(*history: dict[str, Any], stream: bool = False) -> dict[str, Any]:
    return {
        "model": "gpt-x",
        "input": [
            copy.deepcopy(TOOLS_ITEM),
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            *history,
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "stream": stream,
    }


def test_the_sdk_knows_the_item_we_parse() -> None:
    """The official SDK's own types accept the item (so this is the API's shape, not ours)."""
    adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseInputItemParam)
    assert adapter.validate_python(TOOLS_ITEM)["type"] == "additional_tools"


def test_parse_keeps_namespaces_and_free_form_tools() -> None:
    req = CODEC.parse_request(codex_body())
    tools = {(t.namespace, t.name): t for t in req.tools}
    assert set(tools) == {("functions", "exec"), ("functions", "wait"), ("clock", "sleep")}
    custom = tools["functions", "exec"]
    assert custom.free_form and custom.input_format == GRAMMAR
    assert custom.parameters["required"] == ["input"]
    assert "start: /[\\s\\S]+/" in custom.parameters["properties"]["input"]["description"]
    assert not tools["clock", "sleep"].free_form
    assert req.tool_namespaces == {
        "functions": {"description": ""},
        "clock": {"description": "Time tools."},
    }
    assert req.dropped == []


def test_responses_round_trip_is_lossless() -> None:
    body = codex_body(
        {
            "type": "custom_tool_call",
            "call_id": "c1",
            "name": "exec",
            "input": "1+1",
            "namespace": "functions",
        },
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "2"},
        {
            "type": "function_call",
            "call_id": "c2",
            "name": "sleep",
            "namespace": "clock",
            "arguments": '{"ms":5}',
        },
        {"type": "function_call_output", "call_id": "c2", "output": "slept"},
    )
    req = CODEC.parse_request(copy.deepcopy(body))
    out = CODEC.render_request(req)
    assert req.dropped == []
    assert out["input"][0] == TOOLS_ITEM
    assert "tools" not in out  # declared in the item only, as the client did
    history = [{k: v for k, v in item.items() if k != "id"} for item in out["input"][2:]]
    assert history == body["input"][2:]


def test_the_real_codex_request_round_trips() -> None:
    """The captured Codex 0.171.0 request: its additional_tools item comes back identical."""
    fixture = golden.load(golden.FIXTURES / "codex.json")
    body = fixture["calls"][0]["body"]
    req = CODEC.parse_request(copy.deepcopy(body))
    out = CODEC.render_request(req)
    assert out["input"][0] == body["input"][0]
    assert req.dropped == []
    assert len(req.tools) == sum(len(ns["tools"]) for ns in body["input"][0]["tools"])


def _offered(fmt: str, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Tool name -> its input schema, as each format offers it."""
    if fmt == "openai-chat":
        return {t["function"]["name"]: t["function"]["parameters"] for t in body["tools"]}
    if fmt == "anthropic":
        return {t["name"]: t["input_schema"] for t in body["tools"]}
    decls = body["tools"][0]["functionDeclarations"]
    return {d["name"]: d["parametersJsonSchema"] for d in decls}


@pytest.mark.parametrize("fmt", ["openai-chat", "anthropic", "gemini"])
def test_other_formats_get_flat_names_and_a_one_string_stand_in(fmt: str) -> None:
    body = codex_body(
        {"type": "custom_tool_call", "call_id": "c1", "name": "exec", "input": "1+1"},
        {"type": "custom_tool_call_output", "call_id": "c1", "output": "2"},
        {
            "type": "function_call",
            "call_id": "c2",
            "name": "sleep",
            "namespace": "clock",
            "arguments": "{}",
        },
        {"type": "function_call_output", "call_id": "c2", "output": "slept"},
    )
    req = CODEC.parse_request(body)
    out = get_codec(fmt).render_request(req)
    offered = _offered(fmt, out)
    assert set(offered) == FLAT
    assert offered["exec"]["properties"]["input"]["type"] == "string"
    assert offered["exec"]["required"] == ["input"]
    text = json.dumps(out)
    # the history's calls under the same names, the free-form call as {"input": text}
    if fmt == "openai-chat":
        calls = [c["function"] for m in out["messages"] for c in m.get("tool_calls") or []]
        assert calls == [
            {"name": "exec", "arguments": '{"input":"1+1"}'},
            {"name": "clock__sleep", "arguments": "{}"},
        ]
    elif fmt == "anthropic":
        blocks = [
            b for m in out["messages"] if isinstance(m["content"], list) for b in m["content"]
        ]
        uses = [b for b in blocks if b["type"] == "tool_use"]
        assert [(u["name"], u["input"]) for u in uses] == [
            ("exec", {"input": "1+1"}),
            ("clock__sleep", {}),
        ]
    else:
        calls = [
            p["functionCall"] for c in out["contents"] for p in c["parts"] if "functionCall" in p
        ]
        assert [(c["name"], c["args"]) for c in calls] == [
            ("exec", {"input": "1+1"}),
            ("clock__sleep", {}),
        ]
        answers = [
            p["functionResponse"]["name"]
            for c in out["contents"]
            for p in c["parts"]
            if "functionResponse" in p
        ]
        assert answers == ["exec", "clock__sleep"]
    assert "slept" in text  # the results go back too


def _model_calls() -> ir.Response:
    """What a model behind another format answers: the flat names, the stand-in's object."""
    return ir.Response(
        id="msg_1",
        model="m",
        content=[
            ir.ToolUseBlock(id="call_a", name="exec", input={"input": "await tools.x()"}),
            ir.ToolUseBlock(id="call_b", name="clock__sleep", input={"ms": 5}),
            ir.ToolUseBlock(id="call_c", name="wait", input={"cell_id": "1"}),
        ],
        stop_reason="tool_use",
        usage=ir.Usage(input_tokens=10, output_tokens=3),
    )


def _expected_calls(output: list[Any]) -> None:
    calls = [(o.type, o.name, getattr(o, "namespace", None), o.call_id) for o in output]
    assert calls == [
        ("custom_tool_call", "exec", "functions", "call_a"),
        ("function_call", "sleep", "clock", "call_b"),
        ("function_call", "wait", "functions", "call_c"),
    ]
    assert output[0].input == "await tools.x()"
    assert json.loads(output[1].arguments) == {"ms": 5}


def test_json_reply_maps_calls_back_to_the_clients_tools() -> None:
    req = CODEC.parse_request(codex_body())
    rendered = Response.model_validate(CODEC.render_response(_model_calls(), req))
    _expected_calls(rendered.output)


def test_stream_reply_maps_calls_back_to_the_clients_tools() -> None:
    req = CODEC.parse_request(codex_body(stream=True))
    renderer = CODEC.stream_renderer(req)
    data = b"".join(renderer.render(e) for e in ir.response_events(_model_calls()))
    data += renderer.finish()
    adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseStreamEvent)
    events = [
        adapter.validate_python(json.loads(line[len("data: ") :]))
        for line in data.decode().splitlines()
        if line.startswith("data: ")
    ]
    kinds = [e.type for e in events]
    assert "response.custom_tool_call_input.delta" in kinds
    done = [e for e in events if e.type == "response.custom_tool_call_input.done"]
    assert [e.input for e in done] == ["await tools.x()"]
    assert "response.function_call_arguments.delta" in kinds  # the function calls stream as ever
    added = [e.item for e in events if e.type == "response.output_item.added"]
    assert [(i.type, i.namespace) for i in added] == [
        ("custom_tool_call", "functions"),
        ("function_call", "clock"),
        ("function_call", "functions"),
    ]
    final = events[-1]
    assert final.type == "response.completed"
    _expected_calls(final.response.output)


def test_a_responses_upstreams_custom_calls_parse_back() -> None:
    """Responses -> IR -> Responses keeps a custom call's text and a call's namespace, JSON and
    stream alike."""
    req = CODEC.parse_request(codex_body(stream=True))
    renderer = CODEC.stream_renderer(req)
    data = b"".join(renderer.render(e) for e in ir.response_events(_model_calls()))
    back = accumulate(parse_pieces(CODEC, [data]))
    assert [(c.name, c.namespace, c.free_form, c.input) for c in back.tool_calls()] == [
        ("exec", "functions", True, {"input": "await tools.x()"}),
        ("sleep", "clock", False, {"ms": 5}),
        ("wait", "functions", False, {"cell_id": "1"}),
    ]
    whole = CODEC.parse_response(CODEC.render_response(_model_calls(), req))
    assert [(c.name, c.namespace, c.free_form) for c in whole.tool_calls()] == [
        (c.name, c.namespace, c.free_form) for c in back.tool_calls()
    ]


def test_a_namespace_in_the_tools_field_stays_there() -> None:
    """Codex with a model it has no metadata for declares its tools in ``tools``, a
    namespace among them (and a built-in tool, which only a Responses upstream can take)."""
    body = {
        "model": "oa/gpt-x",
        "input": [_user_item("hi")],
        "tools": [
            {"type": "function", "name": "exec_command", "parameters": {"type": "object"}},
            {
                "type": "namespace",
                "name": "multi_agent_v1",
                "description": "Sub-agents.",
                "tools": [{"type": "function", "name": "spawn", "parameters": {"type": "object"}}],
            },
            {"type": "web_search", "external_web_access": False},
        ],
    }
    req = CODEC.parse_request(copy.deepcopy(body))
    out = CODEC.render_request(req)
    assert out["tools"] == body["tools"] and req.dropped == []
    assert not any(i.get("type") == "additional_tools" for i in out["input"])
    chat = get_codec("openai-chat").render_request(CODEC.parse_request(copy.deepcopy(body)))
    assert [t["function"]["name"] for t in chat["tools"]] == [
        "exec_command",
        "multi_agent_v1__spawn",
    ]
    rendered = Response.model_validate(CODEC.render_response(_model_calls(), req))
    assert [t.type for t in rendered.tools][:2] == ["function", "namespace"]


def _user_item(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
