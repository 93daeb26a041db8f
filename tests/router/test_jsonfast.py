"""router.jsonfast: orjson's speed without losing anything json.loads/json.dumps would keep."""

from __future__ import annotations

import json

import pytest

from router import jsonfast


@pytest.mark.parametrize(
    "text",
    [
        "[-9223372036854775809]",  # one below int64: orjson rounds it to a float
        "[18446744073709551616]",  # one above uint64
        '{"seed": 123456789012345678901234567890, "n": 1}',
        '{"id": "12345678901234567890", "n": -9223372036854775809}',
    ],
)
def test_integers_beyond_64_bits_stay_exact(text: str) -> None:
    assert jsonfast.loads(text) == json.loads(text)
    assert jsonfast.loads(text.encode()) == json.loads(text)
    assert json.loads(jsonfast.dumps(jsonfast.loads(text))) == json.loads(text)


@pytest.mark.parametrize(
    "text",
    ["[NaN]", '{"a": Infinity}', '["\\ud800"]', '{"a": 1.5, "b": [true, null, "x"]}'],
)
def test_whatever_json_accepts_parses_as_json_parses_it(text: str) -> None:
    expected = json.loads(text)
    got = jsonfast.loads(text)
    assert repr(got) == repr(expected)  # repr: NaN != NaN


def test_text_that_is_not_json_raises_value_error() -> None:
    for bad in ("{", "[1,]", "nope", ""):
        with pytest.raises(ValueError):
            jsonfast.loads(bad)


def test_dumps_is_compact_utf8_and_writes_big_ints_exactly() -> None:
    value = {"a": [1, 2**70], "é": "ü"}
    assert (
        jsonfast.dumps(value)
        == json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    )
    assert jsonfast.dumps_str({"x": 1.0}) == '{"x":1.0}'
