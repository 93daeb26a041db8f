import pytest

from router import ir
from router.store.records import ModelPrice
from router.usage import (
    complete_usage,
    cost_usd,
    estimate_request_tokens,
    estimate_response_tokens,
)

SONNET = ModelPrice(model="s", input=3.0, output=15.0, cached=0.3, cache_creation=3.75)


def test_plain_cost() -> None:
    usage = ir.Usage(input_tokens=1_000, output_tokens=500)
    # 1000 * 3 / 1e6 + 500 * 15 / 1e6
    assert cost_usd(usage, SONNET) == pytest.approx(0.003 + 0.0075)


def test_cache_read_and_write() -> None:
    # input includes the cache: 10_000 total = 6_000 read + 2_000 written + 2_000 fresh
    usage = ir.Usage(
        input_tokens=10_000, output_tokens=1_000, cache_read_tokens=6_000, cache_write_tokens=2_000
    )
    expected = (2_000 * 3.0 + 6_000 * 0.3 + 2_000 * 3.75 + 1_000 * 15.0) / 1e6
    assert expected == pytest.approx(0.0303)
    assert cost_usd(usage, SONNET) == pytest.approx(expected)


def test_missing_cache_prices_fall_back_to_input() -> None:
    price = ModelPrice(model="x", input=2.0, output=8.0)
    usage = ir.Usage(
        input_tokens=1_000, output_tokens=0, cache_read_tokens=400, cache_write_tokens=100
    )
    assert cost_usd(usage, price) == pytest.approx(1_000 * 2.0 / 1e6)


def test_reasoning_inside_output_unless_priced_separately() -> None:
    usage = ir.Usage(input_tokens=100, output_tokens=1_000, reasoning_tokens=800)
    inside = ModelPrice(model="o", input=1.0, output=4.0)
    assert cost_usd(usage, inside) == pytest.approx((100 * 1.0 + 1_000 * 4.0) / 1e6)
    separate = ModelPrice(model="r", input=1.0, output=4.0, reasoning=2.0)
    assert cost_usd(usage, separate) == pytest.approx((100 * 1.0 + 200 * 4.0 + 800 * 2.0) / 1e6)


def test_unknown_price_and_odd_figures() -> None:
    assert cost_usd(ir.Usage(input_tokens=5, output_tokens=5), None) == 0.0
    # More cache tokens than input (a buggy upstream) never makes the cost negative.
    odd = ir.Usage(input_tokens=10, cache_read_tokens=50)
    assert cost_usd(odd, SONNET) == pytest.approx(50 * 0.3 / 1e6)


def _exchange() -> tuple[ir.Request, ir.Response]:
    req = ir.Request(
        model="m",
        system=[ir.TextBlock(text="be brief " * 10)],
        messages=[ir.Message(role="user", content=[ir.TextBlock(text="hello " * 40)])],
    )
    resp = ir.Response(content=[ir.TextBlock(text="world " * 20)])
    return req, resp


def test_complete_usage_estimates_when_absent() -> None:
    req, resp = _exchange()
    usage = complete_usage(None, req, resp)
    assert usage.estimated
    assert usage.input_tokens == estimate_request_tokens(req) > 0
    assert usage.output_tokens == estimate_response_tokens(resp) > 0


def test_complete_usage_keeps_reported_figures() -> None:
    req, resp = _exchange()
    reported = ir.Usage(input_tokens=321, output_tokens=12, cache_read_tokens=300)
    usage = complete_usage(reported, req, resp)
    assert usage == reported and not usage.estimated
    assert usage is not reported


def test_complete_usage_fills_only_the_missing_half() -> None:
    req, resp = _exchange()
    partial = ir.Usage(input_tokens=321)  # e.g. a stream cut before message_delta
    usage = complete_usage(partial, req, resp)
    assert usage.input_tokens == 321
    assert usage.output_tokens == estimate_response_tokens(resp)
    assert usage.estimated and not partial.estimated
