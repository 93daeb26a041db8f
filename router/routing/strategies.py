"""Combo strategies: the order in which one request tries a combo's nodes, and why some are skipped.

Every strategy first sorts the nodes into three groups, keeping list order:

* skipped: breaker open, half-open probe already out, cooling down after a 429, or (for
  ``context-optimized``) a context window smaller than the request. Never tried.
* busy: at ``maxConcurrent``. Tried only after every ready node, as a last resort, so a full
  connection is skipped, not waited on, while another node is available.
* ready: everything else.

The strategy then orders the ready and the busy group (router.md "Combos and strategies").
Random draws come from ``ctx.rng`` so a seeded ``random.Random`` makes every order
reproducible. Round-robin and strict-random keep their position in ``ctx.state`` (JSON values
only, so the lead can persist it).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from router.errors import BadRequest
from router.routing.breaker import BreakerRegistry, BreakerState
from router.routing.limits import ConcurrencyLimiter
from router.routing.stats import NodeStats, node_key
from router.store.advance import Advance, Draw, Turn
from router.store.records import STRATEGIES, ModelPrice

SkipReason = Literal[
    "breaker_open", "probe_in_flight", "rate_limited", "at_capacity", "context_too_small"
]


class StateStore(Protocol):
    """Strategy state that should survive a restart; values are JSON-serialisable.

    ``advance`` is the one way a strategy moves its state on: it applies ``step``
    (store/advance.py) to the stored value and returns the new one, and no other caller sees
    the old value in between, even another instance sharing the same database
    (store/shared.py: one ``UPDATE ... RETURNING``), so a turn is never taken twice."""

    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def advance(self, key: str, step: Advance) -> Any: ...


class MemoryStateStore:
    """A :class:`StateStore` in a dict. Values go through JSON, exactly as a persistent store
    would round-trip them, so nothing that works here breaks once persisted."""

    def __init__(self, data: dict[str, str] | None = None) -> None:
        self.data: dict[str, str] = data if data is not None else {}

    def get(self, key: str) -> Any:
        raw = self.data.get(key)
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = json.dumps(value)

    def advance(self, key: str, step: Advance) -> Any:
        new = step.apply(self.get(key))
        self.set(key, new)
        return json.loads(self.data[key])


@dataclass(slots=True, frozen=True)
class Candidate:
    """One combo node after resolution: a connection and the upstream model to ask it for."""

    connection_id: str
    model: str
    weight: float = 1.0
    priority: int = 0  # lower number = tried earlier
    context_window: int | None = None
    provider: str | None = None  # for display only

    @property
    def key(self) -> str:
        return node_key(self.connection_id, self.model)


@dataclass(slots=True, frozen=True)
class Skipped:
    candidate: Candidate
    index: int  # position in the input list
    reason: SkipReason
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        c = self.candidate
        return {
            "connectionId": c.connection_id,
            "model": c.model,
            "provider": c.provider,
            "reason": self.reason,
            "detail": self.detail,
        }


@dataclass(slots=True)
class Ordering:
    """The result for one request: the attempt order, plus the nodes left out and why.

    ``order`` holds input-list indices so a caller can order its own objects the same way.
    """

    strategy: str
    nodes: list[Candidate]
    order: list[int]
    skipped: list[Skipped]
    busy: set[int] = field(default_factory=set)  # indices in ``order`` that were at capacity

    @property
    def ordered(self) -> list[Candidate]:
        return [self.nodes[i] for i in self.order]

    def as_dict(self) -> dict[str, Any]:
        """The JSON view for the /api/combos/test dry run."""
        return {
            "strategy": self.strategy,
            "order": [
                {
                    "connectionId": self.nodes[i].connection_id,
                    "model": self.nodes[i].model,
                    "provider": self.nodes[i].provider,
                    "atCapacity": i in self.busy,
                }
                for i in self.order
            ],
            "skipped": [s.as_dict() for s in self.skipped],
        }


@dataclass
class StrategyContext:
    """Everything a strategy may consult; one per router, except ``estimated_tokens``."""

    rng: random.Random = field(default_factory=random.Random)
    stats: NodeStats = field(default_factory=NodeStats)
    breakers: BreakerRegistry = field(default_factory=BreakerRegistry)
    limiter: ConcurrencyLimiter = field(default_factory=ConcurrencyLimiter)
    state: StateStore = field(default_factory=MemoryStateStore)
    price_of: Callable[[str], ModelPrice | None] | None = None
    estimated_tokens: int = 0


def validate_strategy(name: str) -> str:
    """Refuse unknown strategy names (400), as combo writes must."""
    if name not in _ORDERERS and name not in _STATEFUL:
        raise BadRequest(f"unknown strategy '{name}' (one of: {', '.join(STRATEGIES)})")
    return name


def order_nodes(
    strategy: str, combo_name: str, nodes: list[Candidate], ctx: StrategyContext
) -> Ordering:
    """Order ``nodes`` of combo ``combo_name`` for one request."""
    validate_strategy(strategy)
    ready: list[int] = []
    busy: list[int] = []
    skipped: list[Skipped] = []
    for i, c in enumerate(nodes):
        reason, detail = _unavailable(c, strategy, ctx)
        if reason is None:
            ready.append(i)
        elif reason == "at_capacity":
            busy.append(i)
        else:
            skipped.append(Skipped(c, i, reason, detail))
    if strategy in _STATEFUL:
        order = _STATEFUL[strategy](ready, busy, nodes, combo_name, ctx)
    else:
        fn = _ORDERERS[strategy]
        order = fn(ready, nodes, ctx) + fn(busy, nodes, ctx)
    return Ordering(strategy, nodes, order, skipped, set(busy))


def _unavailable(
    c: Candidate, strategy: str, ctx: StrategyContext
) -> tuple[SkipReason | None, str]:
    ok, why = ctx.breakers.peek(c.connection_id, c.model)
    if not ok and why is not None:
        wait = ctx.breakers.retry_in(c.connection_id, c.model)
        return why, "" if wait is None else f"retry in {wait:.1f}s"
    if (
        strategy == "context-optimized"
        and c.context_window is not None
        and ctx.estimated_tokens > c.context_window
    ):
        return "context_too_small", f"window {c.context_window} < ~{ctx.estimated_tokens} tokens"
    if ctx.limiter.is_full(c.connection_id):
        limit = ctx.limiter.limit(c.connection_id)
        return "at_capacity", f"{ctx.limiter.in_flight(c.connection_id)}/{limit} in flight"
    return None, ""


# ---------------------------------------------------------------------- stateless orderers
# Each takes input-list indices (one group) and returns them in try order; ties keep list order.

Orderer = Callable[[list[int], list[Candidate], StrategyContext], list[int]]


def _priority(idx: list[int], nodes: list[Candidate], ctx: StrategyContext) -> list[int]:
    return sorted(idx, key=lambda i: (nodes[i].priority, i))


def _fill_first(idx: list[int], nodes: list[Candidate], ctx: StrategyContext) -> list[int]:
    # "Until it fails or hits its limit": a failing node has its breaker open or is cooling
    # down after a 429 (skipped), one at its limit is busy (last resort); so: list order.
    return list(idx)


def _weighted(idx: list[int], nodes: list[Candidate], ctx: StrategyContext) -> list[int]:
    if not idx:
        return []
    weights = [max(nodes[i].weight, 0.0) for i in idx]
    total = sum(weights)
    if total <= 0:
        first = ctx.rng.choice(idx)
    else:
        r = ctx.rng.random() * total
        first = idx[-1]
        for i, w in zip(idx, weights, strict=True):
            if r < w:
                first = i
                break
            r -= w
    rest = sorted((i for i in idx if i != first), key=lambda i: (-nodes[i].weight, i))
    return [first, *rest]


def _random(idx: list[int], nodes: list[Candidate], ctx: StrategyContext) -> list[int]:
    out = list(idx)
    ctx.rng.shuffle(out)
    return out


def _least_used(idx: list[int], nodes: list[Candidate], ctx: StrategyContext) -> list[int]:
    # Calls finish long after the next ones are planned; counting in-flight calls too keeps a
    # burst of simultaneous requests from all landing on the same node.
    def load(i: int) -> tuple[int, int]:
        c = nodes[i]
        return ctx.stats.window(c.key).requests + ctx.limiter.in_flight(c.connection_id), i

    return sorted(idx, key=load)


def _p2c_score(c: Candidate, ctx: StrategyContext) -> tuple[int, float, float]:
    w = ctx.stats.window(c.key)
    health = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1}.get(
        ctx.breakers.state(c.connection_id), 2
    )
    # Unknown figures count as perfect, so a node without history gets a chance to earn one.
    rate = 1.0 if w.success_rate is None else w.success_rate
    latency = 0.0 if w.p50_latency_ms is None else w.p50_latency_ms
    return health, -rate, latency


def _p2c(idx: list[int], nodes: list[Candidate], ctx: StrategyContext) -> list[int]:
    def by_score(i: int) -> tuple[int, float, float]:
        return _p2c_score(nodes[i], ctx)

    if len(idx) < 2:
        return list(idx)
    a, b = ctx.rng.sample(idx, 2)
    first, second = (b, a) if by_score(b) < by_score(a) else (a, b)
    rest = sorted((i for i in idx if i not in (a, b)), key=lambda i: (by_score(i), i))
    return [first, second, *rest]


def _cost(idx: list[int], nodes: list[Candidate], ctx: StrategyContext) -> list[int]:
    def price(i: int) -> tuple[bool, float, int]:
        p = ctx.price_of(nodes[i].model) if ctx.price_of is not None else None
        return p is None, 0.0 if p is None else p.input, i

    return sorted(idx, key=price)


def _latency(idx: list[int], nodes: list[Candidate], ctx: StrategyContext) -> list[int]:
    def ttft(i: int) -> tuple[bool, float, int]:
        p50 = ctx.stats.window(nodes[i].key).p50_ttft_ms
        return p50 is None, 0.0 if p50 is None else p50, i

    return sorted(idx, key=ttft)


def _lkgp(idx: list[int], nodes: list[Candidate], ctx: StrategyContext) -> list[int]:
    # The node whose latest call succeeded most recently goes first; the rest keep list order.
    best: int | None = None
    best_at = 0.0
    for i in idx:
        w = ctx.stats.window(nodes[i].key)
        if w.known_good and w.last_ok is not None and (best is None or w.last_ok > best_at):
            best, best_at = i, w.last_ok
    if best is None:
        return list(idx)
    return [best, *(i for i in idx if i != best)]


def _context(idx: list[int], nodes: list[Candidate], ctx: StrategyContext) -> list[int]:
    def window(i: int) -> tuple[bool, int, int]:
        cw = nodes[i].context_window
        return cw is None, -(cw or 0), i

    return sorted(idx, key=window)


# ---------------------------------------------------------------------- stateful orderers
# These see all groups at once: their position is over the whole combo, not one group.

StatefulOrderer = Callable[[list[int], list[int], list[Candidate], str, StrategyContext], list[int]]


def _round_robin(
    ready: list[int], busy: list[int], nodes: list[Candidate], combo: str, ctx: StrategyContext
) -> list[int]:
    n = len(nodes)
    if n == 0:
        return []
    turn = Turn(n, tuple(ready), tuple(busy))
    chosen = turn.chosen(ctx.state.advance(f"round-robin:{combo}", turn))
    # The rotation goes on from the node served: ready nodes first, busy ones as a fallback.
    rotation = [(chosen + k) % n for k in range(n)]
    ready_set, busy_set = set(ready), set(busy)
    return [i for i in rotation if i in ready_set] + [i for i in rotation if i in busy_set]


def _strict_random(
    ready: list[int], busy: list[int], nodes: list[Candidate], combo: str, ctx: StrategyContext
) -> list[int]:
    if not nodes:
        return []
    # Ready nodes take their turn first; busy ones only when nothing is ready.
    draw = Draw(tuple(c.key for c in nodes), frozenset(ready or busy), ctx.rng)
    first = Draw.drawn(ctx.state.advance(f"strict-random:{combo}", draw))
    return [*([] if first is None else [first]), *(i for i in ready + busy if i != first)]


_ORDERERS: dict[str, Orderer] = {
    "priority": _priority,
    "weighted": _weighted,
    "fill-first": _fill_first,
    "random": _random,
    "least-used": _least_used,
    "p2c": _p2c,
    "cost-optimized": _cost,
    "latency-optimized": _latency,
    "lkgp": _lkgp,
    "context-optimized": _context,
}
_STATEFUL: dict[str, StatefulOrderer] = {
    "round-robin": _round_robin,
    "strict-random": _strict_random,
}
if set(_ORDERERS) | set(_STATEFUL) != set(STRATEGIES):
    raise RuntimeError("strategies.py and records.STRATEGIES disagree")
