"""Secret masking: headers, values, JSON/SSE/text bodies, query strings; idempotent, linear."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.traffic.masking import (
    REDACTED,
    mask_body,
    mask_headers,
    mask_json,
    mask_query,
    mask_record,
    mask_secret,
    mask_text,
    mask_value,
)
from tests.router.traffic.factory import make_record

ANTHROPIC_KEY = "sk-ant-api03-" + "A1b2C3d4E5f6G7h8I9j0" * 4
OPENAI_KEY = "sk-proj-" + "x9Y8z7W6v5U4t3S2r1Q0" * 2
GOOGLE_KEY = "AIzaSyD-" + "k" * 31  # 39 chars: shorter than the generic 40-char rule


def test_value_masker_shapes() -> None:
    assert mask_value("Bearer abc.def.ghi") == "Bearer ***"
    assert mask_value("authorization: bearer\tabc") == "authorization: bearer ***"
    assert mask_value(ANTHROPIC_KEY) == ANTHROPIC_KEY[:6] + "…" + ANTHROPIC_KEY[-2:]
    assert mask_value(f"key {OPENAI_KEY}.") == f"key {OPENAI_KEY[:6]}…{OPENAI_KEY[-2:]}."
    assert mask_value("pk-" + "q" * 13) == "pk-qqq…qq"
    assert mask_value("sk-short") == "sk-short"  # under 16 characters: not a key
    run = "Z" * 39 + "Y"
    assert mask_value(f"({run})") == "(ZZZZ…ZY)"
    assert mask_value("Z" * 39) == "Z" * 39
    assert mask_value("a normal sentence with words") == "a normal sentence with words"


def test_header_masker() -> None:
    masked = mask_headers(
        [
            ("Authorization", f"Bearer {OPENAI_KEY}"),
            ("x-api-key", ANTHROPIC_KEY),
            ("X-Goog-Api-Key", GOOGLE_KEY),
            ("api-key", "shortkey"),
            ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
            ("Cookie", "session=abc; theme=dark"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("Connection", "keep-alive, X-Trace"),
            ("X-Trace", "drop-me"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"),
            ("X-Session-Token", "tok123"),
            ("Content-Type", "application/json"),
        ]
    )
    assert masked["Authorization"] == "Bearer ***"
    assert masked["x-api-key"] == ANTHROPIC_KEY[:6] + "…" + ANTHROPIC_KEY[-2:]
    assert masked["X-Goog-Api-Key"] == GOOGLE_KEY[:4] + "…" + GOOGLE_KEY[-2:]
    assert masked["api-key"] == "***"
    assert masked["Proxy-Authorization"] == "Basic ***"
    assert masked["Cookie"] == REDACTED
    assert masked["Set-Cookie"] == REDACTED
    assert masked["X-Session-Token"] == "***"
    assert masked["Content-Type"] == "application/json"
    for dropped in ("Connection", "X-Trace", "Transfer-Encoding", "Upgrade"):
        assert dropped not in masked
    assert mask_headers(masked) == masked


def test_query_strings() -> None:
    path = f"/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse&key={GOOGLE_KEY}"
    masked = mask_text(path)
    assert GOOGLE_KEY not in masked
    assert masked.startswith(
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse&key=AIza…"
    )
    assert mask_query("a=1&access_token=xyz&token=&b=2") == "a=1&access_token=***&token=&b=2"
    assert mask_query("api_key=hunter2") == "api_key=***"
    assert mask_query("monkey=banana&keyboard=qwerty") == "monkey=banana&keyboard=qwerty"


def test_json_body_masks_values_and_secret_keys() -> None:
    body = {
        "model": "gpt-4o",
        "api_key": "hunter2",
        "apiKey": "short",
        "nested": [{"password": "p4ss"}, {"text": f"use {OPENAI_KEY} please"}],
        "config": {"client-secret": "abc", "url": f"https://x.test/?key={GOOGLE_KEY}"},
        "max_tokens": 100,
        "token": 5,  # not a string: nothing to mask, and the body shape is kept
    }
    masked = json.loads(mask_body(json.dumps(body), "application/json") or "")
    assert masked["model"] == "gpt-4o"
    assert masked["api_key"] == "***"
    assert masked["apiKey"] == "***"
    assert masked["nested"][0]["password"] == "***"
    assert masked["nested"][1]["text"] == f"use {OPENAI_KEY[:6]}…{OPENAI_KEY[-2:]} please"
    assert masked["config"]["client-secret"] == "***"
    assert GOOGLE_KEY not in masked["config"]["url"]
    assert masked["max_tokens"] == 100 and masked["token"] == 5


def test_sse_and_text_bodies() -> None:
    sse = (
        "event: content_block_delta\n"
        f'data: {{"delta":{{"type":"text_delta","text":"key {ANTHROPIC_KEY}"}}}}\n\n'
        f"data: raw {OPENAI_KEY}\n\n"
        ": keep-alive\n\n"
        "data: [DONE]\n\n"
    )
    masked = mask_body(sse, "text/event-stream; charset=utf-8") or ""
    assert ANTHROPIC_KEY not in masked and OPENAI_KEY not in masked
    assert "event: content_block_delta\n" in masked
    assert "data: [DONE]" in masked and ": keep-alive" in masked
    assert masked.count("\n\n") == sse.count("\n\n")
    assert (
        mask_body(f"token={OPENAI_KEY}", "application/x-www-form-urlencoded") == "token=sk-pro…Q0"
    )
    assert mask_body("{not json " + OPENAI_KEY) == "{not json sk-pro…Q0"
    assert mask_body(None) is None and mask_body("") == ""


def test_mask_secret_is_whole_and_idempotent() -> None:
    assert mask_secret("abc") == "***"
    assert mask_secret("x" * 20) == "xxxx…xx"
    assert mask_secret("Digest user=a") == "Digest ***"
    for value in ("abc", "x" * 20, "Digest user=a", OPENAI_KEY):
        assert mask_secret(mask_secret(value)) == mask_secret(value)


def test_mask_record_covers_every_secret_field() -> None:
    record = make_record(
        path=f"/v1/models?key={GOOGLE_KEY}",
        request_headers={"authorization": f"Bearer {OPENAI_KEY}"},
        request_body=json.dumps({"messages": [{"content": OPENAI_KEY}]}),
        response_headers={"set-cookie": "sid=1"},
        response_body=f"data: {ANTHROPIC_KEY}\n\n",
        error=f"upstream said: bad key {OPENAI_KEY}",
        note=f"tunnel {ANTHROPIC_KEY}",
        annotation=f"remember {OPENAI_KEY}",
    )
    masked = mask_record(record)
    wire = masked.model_dump_json()
    for secret in (OPENAI_KEY, ANTHROPIC_KEY, GOOGLE_KEY):
        assert secret not in wire
    assert mask_record(masked) == masked
    assert record.request_headers["authorization"].endswith(OPENAI_KEY)  # the input is untouched


# --------------------------------------------------------------------------- properties

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@st.composite
def secrets(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["sk-", "sk-ant-", "ak-", "pk-", ""]))
    size = draw(st.integers(min_value=40 if prefix == "" else 20, max_value=80))
    return prefix + draw(st.text(alphabet=_ALNUM, min_size=size, max_size=size))


_free_text = st.text(st.characters(codec="utf-8"), max_size=40)
_separators = st.sampled_from([" ", '"', ",", "(", ":", "/", "=", "\n", "\t", "'", ";"])
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _free_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _assert_gone(secret: str, output: str, context: str = "") -> None:
    """The secret is gone, and so is its middle: at most the first 6 and the last 2 characters
    show (unless the surrounding text itself happens to contain that middle)."""
    assert secret not in output
    if secret[6:-2] not in context:
        assert secret[6:-2] not in output


def _surround(left: str, sep1: str, secret: str, sep2: str, right: str) -> str:
    return f"{left}{sep1}{secret}{sep2}{right}"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_free_text)
def test_text_masking_is_idempotent(text: str) -> None:
    once = mask_text(text)
    assert mask_text(once) == once
    body = mask_body(text)
    assert mask_body(body) == body


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_json_values)
def test_json_masking_is_idempotent(value: Any) -> None:
    text = json.dumps(value)
    once = mask_body(text, "application/json")
    assert mask_body(once, "application/json") == once


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.text(min_size=1, max_size=12), _free_text, max_size=5))
def test_header_masking_is_idempotent(headers: dict[str, str]) -> None:
    once = mask_headers(headers)
    assert mask_headers(once) == once


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secrets(), _free_text, _free_text, _separators, _separators, st.text(_ALNUM, min_size=1))
def test_secret_never_survives_in_a_header(
    secret: str, left: str, right: str, sep1: str, sep2: str, name: str
) -> None:
    value = _surround(left, sep1, secret, sep2, right).replace("\n", " ")
    for header in (name, "authorization", "x-api-key"):
        _assert_gone(secret, mask_headers({header: value}).get(header, ""), left + right)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secrets(), _json_values, _free_text, _separators, st.lists(st.integers(0, 5), max_size=4))
def test_secret_never_survives_in_nested_json(
    secret: str, doc: Any, left: str, sep: str, path: list[int]
) -> None:
    # Bury the secret at a hypothesis-chosen depth inside a hypothesis-chosen document.
    holder: Any = {"wrapper": [doc, {"x": None}]}
    node = holder
    for step in path:
        node = node.setdefault(f"k{step}", {}) if step % 2 else node.setdefault("list", [{}])[0]
    node["deep"] = _surround(left, sep, secret, " ", "tail")
    masked = mask_body(json.dumps(holder), "application/json") or ""
    context = left + json.dumps(doc, ensure_ascii=False)
    _assert_gone(secret, masked, context)
    _assert_gone(secret, json.dumps(json.loads(masked), ensure_ascii=False), context)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secrets(), st.sampled_from(["key", "api_key", "token", "q", "access_token"]), _free_text)
def test_secret_never_survives_in_a_query_string(secret: str, param: str, other: str) -> None:
    url = f"https://example.test/path?alt=sse&{param}={secret}&other=1"
    _assert_gone(secret, mask_text(url))
    record = make_record(path=f"/path?{param}={secret}", request_body=None, response_body=None)
    _assert_gone(secret, mask_record(record).model_dump_json())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secrets(), _free_text, _separators)
def test_secret_never_survives_in_sse_data_lines(secret: str, left: str, sep: str) -> None:
    chunk = {"choices": [{"delta": {"content": _surround(left, sep, secret, " ", "x")}}]}
    sse = (
        f"data: {json.dumps(chunk)}\n\n"
        f"event: ping\ndata: {left.replace(chr(10), ' ')}{sep if sep != chr(10) else ' '}{secret}\n\n"
        "data: [DONE]\n\n"
    )
    masked = mask_body(sse, "text/event-stream") or ""
    _assert_gone(secret, masked, left)
    assert mask_body(masked, "text/event-stream") == masked


# --------------------------------------------------------------------------- linear time


def test_adversarial_megabyte_inputs_complete() -> None:
    """Inputs that would take hours with a backtracking pattern such as ``(\\w+)+$`` or
    ``(a|a)*``; they must simply complete (no timing threshold)."""
    mb = 1024 * 1024
    one_run = "a" * mb
    assert mask_text(one_run) == "aaaa…aa"
    near_runs = ("b" * 39 + "!") * (mb // 40)
    assert mask_text(near_runs) == near_runs
    bearer = "Bearer" + " " * mb + ","
    assert mask_text(bearer) == bearer
    assert mask_text("bearer\t" * (mb // 7)).count("***") >= (mb // 7) // 2
    keys = "sk-" * (mb // 3)
    assert len(mask_text(keys)) == 9
    params = "&key=" * (mb // 5)
    assert len(mask_query(params)) == len(params)
    almost_json = "{" + '"a":' * (mb // 4)
    assert mask_body(almost_json) == almost_json
    deep = "[" * 200_000 + "]" * 200_000
    assert mask_body(deep) == deep
    wide = json.dumps({"k": ["x" * 39 + " "] * (mb // 40)})
    assert mask_json(json.loads(wide)) == json.loads(wide)


_TEXTS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "sk-" + "a" * 30,
            "Bearer abc.def",
            "https://x.test/?key=AIzaSyA-1234567890abcdef",
            "x" * 45,
            "plain words only",
            "completion_tokens",
            'he said "hi": ok',
            "caf\u00e9 \u2603",
            "\x01ctrl",
            "0123456789abcdef0123456789abcdef",  # a UUID's hex: 32, no prefix, not masked
            "chatcmpl-" + "B" * 30,  # 39: not masked; one more and it is
            "chatcmpl-" + "B" * 31,
            "ask-" + "q" * 20,  # the prefix inside a run: conservative, walked
            "x-cost=0.001",  # an "=" that is no secret parameter
            "see ?api_key=abc123&x=1",
            'data: {"x":1}\n: cost=1\n\n',
        ]
    ),
)
_KEYS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["api_key", "X-Api-Key", "password", "completion_tokens", "prompt_tokens", "text"]
    ),
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXTS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_JSON)
def test_the_clean_text_shortcut_never_skips_what_the_walk_would_mask(value: Any) -> None:
    """mask_json, dumps_masked and mask_body skip parsing and walking a document in which no
    rule can fire; whatever the document, the result is what the full walk gives."""
    from router import jsonfast
    from router.traffic import masking

    walked = masking._mask_json_walk(json.loads(json.dumps(value)))
    assert masking.mask_json(value) == walked
    assert json.loads(masking.dumps_masked(value)) == walked
    text = jsonfast.dumps_str(value)
    assert json.loads(masking.mask_body(text, "application/json") or "null") == walked
    spaced = json.dumps(value, indent=1)  # raw client text: spaces, escapes (\\u...)
    assert json.loads(masking.mask_body(spaced, "application/json") or "null") == walked


def test_the_clean_check_looks_at_values_without_keys_only_when_the_whole_text_has_a_run() -> None:
    """Keys are never masked: a long key (or one holding a key prefix) does not make JSON text
    unclean; the same run as a value, or in text that is not JSON, does."""
    from router.traffic.masking import _clean

    run = b"sk-" + b"a" * 40
    assert _clean(b'{"completion_tokens_details_extra": 1, "%s": "short"}' % run)
    assert not _clean(b'{"x": "%s"}' % run)
    assert not _clean(b'"%s": 1' % run, is_json=False)
    assert _clean(b'{"id": "chatcmpl-0123456789abcdef", "n": 1}')


_PARAM_TEXT = st.lists(
    st.sampled_from(["key", "API_Key", "x-goog-api-KEY", "sig", "signature", "monkey", "auth",
                     "Token", "to", "ken", "=", "==", "&", "?", " ", "_", "-", "a", "\u0130"])
    | st.text(max_size=6),
    max_size=12,
).map("".join)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(_PARAM_TEXT)
def test_the_secret_parameter_check_finds_what_the_regex_it_replaced_finds(text: str) -> None:
    """``_secret_param`` looks back from each "=" (the case-insensitive regex of every parameter
    name took ~75 us per KiB): on any text, str or UTF-8 bytes, it answers as the regex did."""
    import re

    from router.traffic import masking

    regex = re.compile(rf"(?i)(?:{masking._SECRET_PARAMS})=")
    expected = regex.search(text) is not None
    assert masking._secret_param(text.lower()) == expected
    if text.isascii():
        assert masking._secret_param(text.encode().lower()) == expected
