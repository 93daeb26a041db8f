"""Rolling per-node call statistics (requests, failures, latency, TTFT) for strategies and metrics.

A node is one (connection id, upstream model) pair; :func:`node_key` spells its key the same
way ``router.routing.resolve.Step.key`` does.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Wall-clock time: "last used" is shown to people, and a clock jump only blurs a 5-minute window.
Clock = Callable[[], float]


def node_key(connection_id: str, model: str) -> str:
    return f"{connection_id}:{model}"


@dataclass(slots=True, frozen=True)
class _Sample:
    at: float
    ok: bool
    latency_ms: float | None
    ttft_ms: float | None


@dataclass(slots=True)
class _Node:
    samples: deque[_Sample]
    total_requests: int = 0
    total_failures: int = 0
    latency_sum_ms: float = 0.0
    latency_count: int = 0
    last_used: float | None = None
    last_ok: float | None = None
    last_failure: float | None = None


@dataclass(slots=True, frozen=True)
class NodeWindow:
    """What the recent window says about one node."""

    requests: int = 0
    failures: int = 0
    success_rate: float | None = None  # None: no calls in the window
    p50_latency_ms: float | None = None
    p50_ttft_ms: float | None = None
    last_used: float | None = None
    last_ok: float | None = None
    last_failure: float | None = None

    @property
    def known_good(self) -> bool:
        """Its latest outcome was a success."""
        return self.last_ok is not None and (
            self.last_failure is None or self.last_ok >= self.last_failure
        )


@dataclass
class NodeStats:
    """Keeps the last ``max_samples`` calls of each node, and only those younger than
    ``window_s``; lifetime totals and last-seen times are kept outside the window."""

    window_s: float = 300.0
    max_samples: int = 100
    clock: Clock = time.time
    _nodes: dict[str, _Node] = field(default_factory=dict, init=False, repr=False)

    def _node(self, key: str) -> _Node:
        n = self._nodes.get(key)
        if n is None:
            n = self._nodes[key] = _Node(samples=deque(maxlen=self.max_samples))
        return n

    def record(
        self, key: str, ok: bool, latency_ms: float | None = None, ttft_ms: float | None = None
    ) -> None:
        now = self.clock()
        n = self._node(key)
        n.samples.append(_Sample(now, ok, latency_ms, ttft_ms))
        n.total_requests += 1
        n.last_used = now
        if ok:
            n.last_ok = now
        else:
            n.total_failures += 1
            n.last_failure = now
        if latency_ms is not None:
            n.latency_sum_ms += latency_ms
            n.latency_count += 1

    def _recent(self, n: _Node, now: float) -> list[_Sample]:
        cutoff = now - self.window_s
        while n.samples and n.samples[0].at < cutoff:
            n.samples.popleft()
        return list(n.samples)

    def window(self, key: str) -> NodeWindow:
        n = self._nodes.get(key)
        if n is None:
            return NodeWindow()
        recent = self._recent(n, self.clock())
        failures = sum(1 for s in recent if not s.ok)
        # Failed calls often end early (or time out); their timings would skew latency.
        latencies = [s.latency_ms for s in recent if s.ok and s.latency_ms is not None]
        ttfts = [s.ttft_ms for s in recent if s.ok and s.ttft_ms is not None]
        return NodeWindow(
            requests=len(recent),
            failures=failures,
            success_rate=(len(recent) - failures) / len(recent) if recent else None,
            p50_latency_ms=statistics.median(latencies) if latencies else None,
            p50_ttft_ms=statistics.median(ttfts) if ttfts else None,
            last_used=n.last_used,
            last_ok=n.last_ok,
            last_failure=n.last_failure,
        )

    def reset(self, key: str | None = None) -> None:
        if key is None:
            self._nodes.clear()
        else:
            self._nodes.pop(key, None)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per node key, the JSON view for /api/combos/metrics (times are epoch seconds)."""
        out: dict[str, dict[str, Any]] = {}
        for key, n in list(self._nodes.items()):
            w = self.window(key)
            out[key] = {
                "requests": n.total_requests,
                "failures": n.total_failures,
                "avgLatencyMs": (
                    round(n.latency_sum_ms / n.latency_count, 2) if n.latency_count else None
                ),
                "lastUsed": n.last_used,
                "lastOk": n.last_ok,
                "window": {
                    "seconds": self.window_s,
                    "requests": w.requests,
                    "failures": w.failures,
                    "successRate": w.success_rate,
                    "p50LatencyMs": w.p50_latency_ms,
                    "p50TtftMs": w.p50_ttft_ms,
                },
            }
        return out
