"""Tokens and cost of one call: the cost formula and estimates for missing usage."""

from __future__ import annotations

import dataclasses

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
        out.input_tokens = ir.estimate_request_tokens(req)
        out.estimated = True
    if out.output_tokens <= 0:
        estimate = ir.estimate_response_tokens(resp)
        if estimate or usage is None:
            out.output_tokens = estimate
            out.estimated = True
    return out
