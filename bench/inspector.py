"""Inspector memory and export cost: RSS at N records of B KiB bodies, HAR export time.

Run as its own process (``python -m bench.inspector``) so the RSS it reports is the live
buffer's and nothing else's; prints one JSON object.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import time
from typing import Any

import psutil


def _record(i: int, body_kib: int) -> Any:
    from router.traffic.record import InterceptedRequest, LlmInfo

    # Prose, distinct per record (or CPython could share one string among all of them), and
    # nothing that looks like a credential, so masking keeps it whole as it would a real prompt.
    words = f"record {i} asks the model to refactor the parser and explain each step. "
    filler = (words * (body_kib * 1024 // len(words) + 1))[: body_kib * 1024 - 80]
    req = json.dumps({"model": "gpt-bench", "messages": [{"role": "user", "content": filler}]})
    resp = json.dumps({"id": f"chatcmpl-{i}", "choices": [{"message": {"content": filler}}]})
    return InterceptedRequest(
        id=f"rec-{i:06d}",
        source="http-proxy",
        agent="bench",
        timestamp=datetime.datetime.now(datetime.UTC),
        method="POST",
        host="api.openai.com",
        path="/v1/chat/completions",
        request_headers={"content-type": "application/json", "authorization": "Bearer sk-xxxx"},
        request_body=req,
        request_size=len(req),
        response_headers={"content-type": "application/json"},
        response_body=resp,
        response_size=len(resp),
        status=200,
        proxy_latency_ms=0.4,
        upstream_latency_ms=120.0,
        ttfb_ms=80.0,
        total_latency_ms=121.0,
        detected_kind="llm",
        llm=LlmInfo(provider="openai", model="gpt-bench", tokens_in=100, tokens_out=20),
    )


def measure(records: int, body_kib: int, budget_s: float = 600.0) -> dict[str, Any]:
    """Fill a LiveBuffer with ``records`` records (stopping early, and saying so, when the
    fill exceeds ``budget_s``), then time a HAR export of what it holds."""
    from router.traffic.buffer import LiveBuffer
    from router.traffic.har import iter_har

    proc = psutil.Process(os.getpid())
    gc.collect()
    rss0 = proc.memory_info().rss
    buf = LiveBuffer(size=records, max_body_kb=max(1024, body_kib * 2))
    t = time.perf_counter()
    for i in range(records):
        buf.add(_record(i, body_kib))
        if time.perf_counter() - t > budget_s:
            break
    fill_s = time.perf_counter() - t
    gc.collect()
    rss1 = proc.memory_info().rss
    # The export as the server streams it: chunk by chunk, never the whole document at once.
    t = time.perf_counter()
    har_bytes = 0
    for chunk in iter_har(buf.iter_records(), version="bench"):
        har_bytes += len(chunk)
    har_s = time.perf_counter() - t
    gc.collect()
    rss2 = proc.memory_info().rss
    return {
        "records": len(buf),
        "target_records": records,
        "body_kib": body_kib,
        "rss_base_mb": rss0 / 2**20,
        "rss_mb": rss1 / 2**20,
        "buffer_mb": (rss1 - rss0) / 2**20,
        "fill_s": fill_s,
        "har_s": har_s,
        "har_mb": har_bytes / 2**20,
        "har_entries": len(buf),
        "rss_after_export_mb": rss2 / 2**20,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--body-kib", type=int, default=8)
    parser.add_argument("--budget-s", type=float, default=600.0, help="stop filling after this")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.records, args.body_kib, args.budget_s)))


if __name__ == "__main__":
    main()
