"""Builders of realistic inspector records for the traffic tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from router.traffic.record import InterceptedRequest

T0 = datetime(2025, 5, 1, 12, 0, 0, tzinfo=UTC)


def make_record(n: int = 0, **fields: Any) -> InterceptedRequest:
    base: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "source": "agent-bridge",
        "agent": "claude-code",
        "timestamp": T0 + timedelta(seconds=n),
        "method": "POST",
        "scheme": "https",
        "host": "api.anthropic.com",
        "port": 443,
        "path": "/v1/messages",
        "request_headers": {"content-type": "application/json"},
        "request_body": '{"model": "claude-sonnet-4-5", "messages": []}',
        "request_size": 48,
        "response_headers": {"content-type": "application/json"},
        "response_body": '{"type": "message"}',
        "response_size": 19,
        "status": 200,
        "proxy_latency_ms": 1.5,
        "upstream_latency_ms": 120.0,
        "ttfb_ms": 80.0,
        "total_latency_ms": 122.0,
        "detected_kind": "llm",
    }
    base.update(fields)
    return InterceptedRequest(**base)
