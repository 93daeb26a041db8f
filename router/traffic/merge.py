"""SSE merge, normalized conversation and the ``llm`` summary of a captured call.

All format knowledge comes from the router's codecs (``router.formats``): a stream is merged
by the codec's stream parser feeding :class:`ir.StreamAccumulator`, a body is understood by
``parse_request``/``parse_response``. Captured traffic is untrusted, so a codec that rejects
a body yields "no answer" here, never an exception into the capture path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal, TypedDict

from router import ir
from router.formats import Codec, get_codec
from router.traffic.detect import parse_request, request_key
from router.traffic.masking import mark_masked, mask_json, mask_text
from router.traffic.record import LlmInfo
from router.usage import complete_usage, token_fields

log = logging.getLogger(__name__)

CostFn = Callable[[str, ir.Usage], float | None]  # None: the model has no price


class Turn(TypedDict):
    role: Literal["system", "user", "assistant", "tool"]
    blocks: list[dict[str, Any]]


class Conversation(TypedDict):
    request: list[Turn]
    response: list[Turn]
    contextKey: str | None


def _codec(fmt: str | None) -> Codec | None:
    if fmt is None:
        return None
    try:
        return get_codec(fmt)
    except (KeyError, ImportError):
        return None


def merge_stream(fmt: str | None, raw: bytes) -> ir.Response | None:
    """A captured stream as the equivalent non-streamed response; None when the format has no
    codec or nothing was understood. A cut or errored stream yields what arrived."""
    codec = _codec(fmt)
    if codec is None or not raw:
        return None
    acc = ir.StreamAccumulator()
    parser = codec.stream_parser()
    try:
        acc.feed_all(parser.feed(raw))
        acc.feed_all(parser.close())
    except Exception as exc:  # untrusted bytes: a codec error must not escape into capture
        log.debug("stream merge failed for %s: %s", fmt, type(exc).__name__)
    response = acc.result()
    if not acc.started and not response.content and response.usage is None:
        return None
    return response


def parse_response(fmt: str | None, body: Any) -> ir.Response | None:
    """The IR of a captured non-streamed response body, or None."""
    codec = _codec(fmt)
    if codec is None or not isinstance(body, dict):
        return None
    try:
        return codec.parse_response(body)
    except Exception:
        return None


def render_response(
    fmt: str | None, response: ir.Response, request: ir.Request | None
) -> dict[str, Any] | None:
    """A (merged) response rendered back into the call's own wire format."""
    codec = _codec(fmt)
    if codec is None:
        return None
    req = request or ir.Request(model=response.model, source_format=fmt or "")
    try:
        rendered = codec.render_response(response, req)
    except Exception:
        return None
    if response.incomplete:
        # A stream that never reached its end has no finish reason; the renderer filled in the
        # normal one (a reply needs one), so the codec takes it out again.
        codec.mark_unfinished(rendered)
    return rendered


# --------------------------------------------------------------------------- conversation


def block_dict(block: ir.Block) -> dict[str, Any]:
    """One IR content block as a conversation block (camelCase, no base64 payloads)."""
    match block:
        case ir.TextBlock():
            return {"type": "text", "text": block.text}
        case ir.ThinkingBlock():
            out: dict[str, Any] = {"type": "thinking", "thinking": block.thinking}
            if block.redacted:
                out["redacted"] = True
            return out
        case ir.ToolUseBlock():
            out = {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
            if block.raw_arguments is not None:
                out["rawArguments"] = block.raw_arguments
            return out
        case ir.ToolResultBlock():
            out = {
                "type": "tool_result",
                "toolUseId": block.tool_use_id,
                "content": [block_dict(b) for b in block.content],
                "isError": block.is_error,
            }
            if block.name is not None:
                out["name"] = block.name
            return out
        case ir.ImageBlock():
            # The image itself stays in the body; the conversation only says one was there.
            out = {"type": "image", "mediaType": block.media_type}
            if block.url is not None:
                out["url"] = block.url
            if block.data is not None:
                out["dataLength"] = len(block.data)
            return out


def request_turns(req: ir.Request) -> list[Turn]:
    turns: list[Turn] = []
    if req.system:
        turns.append({"role": "system", "blocks": [block_dict(b) for b in req.system]})
    for message in req.messages:
        turns.append({"role": message.role, "blocks": [block_dict(b) for b in message.content]})
    return turns


def response_turns(resp: ir.Response | None) -> list[Turn]:
    if resp is None or not resp.content:
        return []
    return [{"role": "assistant", "blocks": [block_dict(b) for b in resp.content]}]


# --------------------------------------------------------------------------- llm summary


def model_from_path(path: str) -> str | None:
    """Gemini names the model in the path: ``/v1beta/models/<model>:generateContent``."""
    bare = path.partition("?")[0]
    marker = "/models/"
    if marker not in bare:
        return None
    tail = bare.rsplit(marker, 1)[1]
    return tail.partition(":")[0] or None


def llm_summary(
    fmt: str | None,
    request_body: Any,
    response: ir.Response | None,
    *,
    provider: str | None = None,
    streamed: bool = False,
    path: str = "",
    cost_fn: CostFn | None = None,
    request: ir.Request | None = None,
) -> LlmInfo:
    """The record's ``llm`` object. ``response`` is the merged stream (:func:`merge_stream`)
    or the parsed body (:func:`parse_response`). Figures the response lacks are counted
    locally as the router counts them, and ``usageEstimated`` is set. Everything is masked on the way out: a secret
    split across stream deltas is whole again once merged. ``request``: the request body
    already parsed (a caller that parsed it for the context key), so it is not parsed again."""
    body_model = request_body.get("model") if isinstance(request_body, dict) else None
    hint = body_model if isinstance(body_model, str) else model_from_path(path)
    req = request if request is not None else parse_request(fmt, request_body, model=hint)
    model = (response.model if response is not None else "") or hint or (req.model if req else "")

    # The router's rule (router.usage): the same reply gets the same figures in both places.
    usage = complete_usage(response.usage, req, response) if response is not None else None
    cost: float | None = None
    if usage is not None and cost_fn is not None and model:
        try:
            cost = cost_fn(model, usage)
        except (
            Exception
        ) as exc:  # pricing is a separate concern; a bad table row must not drop a record
            log.debug("cost failed for %s: %s", model, type(exc).__name__)

    # A stream's merged form, in the call's own format (the UI shows it beside the SSE text).
    # A whole reply is already the response body: no second copy of it.
    rendered = render_response(fmt, response, req) if response and streamed else None
    convo: Conversation = {
        "request": request_turns(req) if req is not None else [],
        "response": response_turns(response),
        "contextKey": request_key(req),
    }
    # Built from masked values and marked so (as mask_llm would mark it): the buffer does not
    # mask the llm object again. Without validation: every value has its field's type here.
    return mark_masked(
        LlmInfo.trusted(
            provider=provider,
            format=fmt,
            model=mask_text(model) if model else None,
            streamed=streamed,
            **token_fields(usage),
            cost_usd=None if cost is None else float(cost),
            incomplete=response.incomplete if response is not None else False,
            response=mask_json(rendered),
            conversation=mask_json(dict(convo)),
        )
    )
