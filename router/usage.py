"""Tokens and cost of one call: the cost formula and estimates for missing usage."""

from __future__ import annotations

import dataclasses
import json

from router import ir
from router.store.records import ModelPrice

PER = 1_000_000  # prices are USD per 1M tokens


def cost_usd(usage: ir.Usage, price: ModelPrice | None) -> float:
    """router.md "Usage and cost", with OpenAI token semantics (input includes cache reads
    and writes, output includes reasoning). Unknown model -> 0.0."""
    if price is None:
        return 0.0
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


def complete_usage(usage: ir.Usage | None, req: ir.Request, resp: ir.Response) -> ir.Usage:
    """``usage`` with the figures upstream did not send estimated (``estimated=True``).
    Returns a new object; the caller's usage is not modified."""
    out = ir.Usage() if usage is None else dataclasses.replace(usage)
    if usage is None:
        out.estimated = True
    if out.input_tokens <= 0:
        out.input_tokens = estimate_request_tokens(req)
        out.estimated = True
    if out.output_tokens <= 0:
        estimate = estimate_response_tokens(resp)
        if estimate or usage is None:
            out.output_tokens = estimate
            out.estimated = True
    return out


def estimate_tokens(text: str) -> int:
    """A rough token count (about 4 characters a token) for when upstream gives no usage."""
    return max(1, (len(text) + 3) // 4) if text else 0


def estimate_request_tokens(req: ir.Request) -> int:
    parts: list[str] = [req.system_text()]
    for msg in req.messages:
        for block in msg.content:
            match block:
                case ir.TextBlock():
                    parts.append(block.text)
                case ir.ToolUseBlock():
                    parts.append(block.name + block.arguments_json())
                case ir.ToolResultBlock():
                    parts.append(block.text())
                case ir.ThinkingBlock():
                    parts.append(block.thinking)
                case _:
                    parts.append("x" * 1000)  # an image costs roughly a thousand tokens
    for tool in req.tools:
        parts.append(tool.name + (tool.description or "") + json.dumps(tool.parameters))
    return estimate_tokens("\n".join(parts))


def estimate_response_tokens(resp: ir.Response) -> int:
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
    return estimate_tokens("".join(parts))
