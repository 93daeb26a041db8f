"""wrk output parsing, the wrk Lua script, SSE frame counting and py-spy folding."""

import pytest

from bench import wrk
from bench.driver import is_content_event, is_data_event, split_events
from bench.profile import fold

WRK_OUT = """Running 2s test @ http://127.0.0.1:1/v1/chat/completions
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.10ms    1.20ms  20.00ms   90.00%
  Latency Distribution
     50%    2.50ms
     75%    3.00ms
     90%    4.00ms
     99%  812.00us
  9000 requests in 2.00s, 3.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   4500.50
Transfer/sec:      1.50MB
"""


def test_wrk_parse():
    r = wrk.parse(WRK_OUT, 16)
    assert r.rps == 4500.5
    assert r.p50_ms == 2.5
    assert r.p99_ms == pytest.approx(0.812)
    assert r.requests == 9000
    assert r.errors == 7
    with pytest.raises(ValueError):
        wrk.parse("garbage", 1)


def test_wrk_lua_never_opens_a_long_string_by_accident():
    script = wrk.lua_script('{"a": "]]"}', {"Content-Type": "application/json"})
    assert "wrk.headers[[" not in script
    assert 'wrk.body = [==[{"a": "]]"}]==]' in script


def test_sse_frames_ignore_comments_and_count_content():
    raw = (
        b'data: {"choices":[{"delta":{"role":"assistant","content":"hi"}}]}\r\n\r\n'
        b": x-omniroute-usage 1\n\n"
        b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n'
        b"event: content_block_delta\n"
        b'data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"x"}}\n\n'
        b"data: [DO"
    )
    events, rest = split_events(raw)
    assert rest == b"data: [DO"
    assert [is_data_event(e) for e in events] == [True, False, True, True]
    assert [is_content_event(e) for e in events] == [True, False, False, True]


def test_fold_py_spy_raw():
    raw = (
        "<module> (x.py:1);main (/work/main/web/v1.py:10);mask (router/traffic/masking.py:5) 30\n"
        "<module> (x.py:1);main (/work/main/web/v1.py:10) 10\n"
        "not a line\n"
    )
    prof = fold(raw, "t")
    assert prof.samples == 40
    assert prof.self_top[0] == ("mask (router/traffic/masking.py)", 75.0)
    assert dict(prof.inclusive_top)["main (web/v1.py)"] == 100.0
    assert fold("", "t").error == "no samples"
