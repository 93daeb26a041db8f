"""Model resolution: a requested model name becomes a plan, an ordered list of attempts.

Order (router.md "Model resolution"): ``provider/model``, alias, combo, bare model found in
connection model lists (a connection without a list is reached only as ``connection/model``);
otherwise ``model_not_found`` with close names. Global fallback chains
extend the plan of a plain model (not a combo).
"""

from __future__ import annotations

import dataclasses
import difflib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from router.catalog import Catalog
from router.errors import BadRequest, ModelNotFound
from router.routing.strategies import Candidate, StateStore, StrategyContext, order_nodes
from router.store.advance import Advance
from router.store.records import Combo, ProviderConnection

MAX_DEPTH = 8  # aliases and nested combos; cycles are refused at write time, this is a backstop


@dataclass(slots=True)
class Step:
    connection: ProviderConnection
    model: str  # the upstream model name
    combo: str | None = None
    via: str = "direct"  # direct | alias | combo | fallback
    weight: float = 1.0
    priority: int = 0

    @property
    def key(self) -> str:
        return f"{self.connection.id}:{self.model}"


@dataclass(slots=True)
class Skip:
    step: Step
    reason: str


@dataclass(slots=True)
class Plan:
    requested: str
    steps: list[Step] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    combo: str | None = None


# Orders a combo's expanded steps for one request, given a (lazy) estimate of the request's
# tokens; the default is priority then list order.
TokenEstimate = Callable[[], int]


class ComboOrderer(Protocol):
    def __call__(
        self, combo: Combo, steps: list[Step], estimate: TokenEstimate, *, dry_run: bool = False
    ) -> tuple[list[Step], list[Skip]]: ...


def _no_estimate() -> int:
    return 0


def priority_order(
    combo: Combo, steps: list[Step], estimate: TokenEstimate, *, dry_run: bool = False
) -> tuple[list[Step], list[Skip]]:
    return sorted(steps, key=lambda s: s.priority), []


class Resolver:
    def __init__(self, catalog: Catalog, orderer: ComboOrderer = priority_order) -> None:
        self.catalog = catalog
        self.orderer = orderer
        self._estimate: TokenEstimate = _no_estimate
        self._dry_run = False

    def plan(
        self,
        model: str,
        *,
        pinned: str | None = None,
        estimate: TokenEstimate = _no_estimate,
        dry_run: bool = False,
    ) -> Plan:
        """The attempt plan for ``model``; ``pinned`` restricts it to one connection ref
        (``/v1/providers/{provider}/...``); ``estimate`` gives the request's token count
        for strategies that need it (context-optimized); ``dry_run`` plans without moving
        strategy state (round-robin position, strict-random deck) for /api/combos/test."""
        if not model:
            raise BadRequest("'model' is required")
        if pinned is not None:
            conns = self.catalog.connection_by_ref(pinned)
            if not conns:
                raise BadRequest(f"unknown provider '{pinned}'")
            name = model.split("/", 1)[1] if model.startswith(f"{pinned}/") else model
            return Plan(model, [Step(c, name) for c in conns if c.is_active])
        plan = Plan(model)
        self._estimate, self._dry_run = estimate, dry_run
        try:
            self._expand(model, plan, depth=0, via="direct")
        finally:
            # The estimate closes over the request: kept here, the last request (a 30 MB body)
            # would live until the next one.
            self._estimate, self._dry_run = _no_estimate, False
        if not plan.steps and not plan.skipped:
            raise ModelNotFound(model, self._suggest(model))
        if plan.combo is None:
            self._add_fallback_chain(model, plan)
        return plan

    def _expand(self, model: str, plan: Plan, *, depth: int, via: str) -> None:
        if depth > MAX_DEPTH:
            raise BadRequest(f"model '{plan.requested}' resolves through too many aliases/combos")
        cat = self.catalog
        if "/" in model:
            ref, name = model.split("/", 1)
            conns = cat.connection_by_ref(ref)
            if conns:
                plan.steps += [Step(c, name, via=via) for c in conns if c.is_active]
                return
        if model in cat.aliases:
            self._expand(cat.aliases[model], plan, depth=depth + 1, via="alias")
            return
        if model in cat.combos:
            combo = cat.combos[model]
            plan.combo = plan.combo or combo.name
            expanded = self._combo_steps(combo, depth)
            ordered, skipped = self.orderer(combo, expanded, self._estimate, dry_run=self._dry_run)
            plan.steps += ordered
            plan.skipped += skipped
            return
        # A bare name goes only to connections that list it (in catalog order: priority, then
        # creation). A connection without a list serves ``connection/model`` only, so a typo
        # is a 404 here instead of a call to whichever upstream takes anything.
        plan.steps += [
            Step(c, model, via=via) for c in cat.active_connections() if model in c.models
        ]

    def _combo_steps(self, combo: Combo, depth: int) -> list[Step]:
        steps: list[Step] = []
        for node in combo.nodes:
            if node.combo is not None:
                nested = Plan(combo.name)
                self._expand(node.combo, nested, depth=depth + 1, via="combo")
                for step in nested.steps:
                    step.combo, step.weight, step.priority = combo.name, node.weight, node.priority
                steps += nested.steps
                continue
            conn = self.catalog.connections.get(node.connection_id or "")
            if conn is None or not conn.is_active:
                continue
            model = node.model or combo.model or ""
            step = Step(conn, model, combo=combo.name, via="combo")
            step.weight, step.priority = node.weight, node.priority
            steps.append(step)
        return steps

    def _add_fallback_chain(self, model: str, plan: Plan) -> None:
        chain = self.catalog.chains.get(model)
        if chain is None:
            return
        seen = {s.key for s in plan.steps}
        for link in sorted(chain.chain, key=lambda link: link.priority):
            if not link.enabled:
                continue
            ref, _, name = link.provider.partition("/")
            for conn in self.catalog.connection_by_ref(ref):
                step = Step(conn, name or model, via="fallback")
                if conn.is_active and step.key not in seen:
                    seen.add(step.key)
                    plan.steps.append(step)

    def _suggest(self, model: str) -> list[str]:
        active = self.catalog.active_connections()
        names = [name for name, _ in self.catalog.model_ids()]
        names += sorted({m for c in active for m in c.models})
        close = difflib.get_close_matches(model, names, n=3, cutoff=0.5)
        if close or "/" in model:
            return close
        # Nothing close is listed anywhere: the name may be right for a connection that has
        # no model list, which serves it under its own prefix.
        return [f"{c.name}/{model}" for c in active if not c.models][:3]


class StrategyOrderer:
    """Orders combo steps with the strategies of router/routing/strategies.py."""

    def __init__(
        self,
        ctx: StrategyContext,
        context_window: Callable[[str], int | None] = lambda _model: None,
    ) -> None:
        self.ctx = ctx
        self.context_window = context_window

    def __call__(
        self, combo: Combo, steps: list[Step], estimate: TokenEstimate, *, dry_run: bool = False
    ) -> tuple[list[Step], list[Skip]]:
        candidates = [
            Candidate(
                connection_id=s.connection.id,
                model=s.model,
                weight=s.weight,
                priority=s.priority,
                context_window=self.context_window(s.model),
                provider=s.connection.name,
            )
            for s in steps
        ]
        ctx = self.ctx
        if combo.strategy == "context-optimized":
            ctx = dataclasses.replace(ctx, estimated_tokens=estimate())
        if dry_run:  # a look at the order must not take a turn or draw a card
            ctx = dataclasses.replace(
                ctx, state=_ReadOnlyState(ctx.state), rng=random.Random(ctx.rng.random())
            )
        ordering = order_nodes(combo.strategy, combo.name, candidates, ctx)
        skipped = [Skip(steps[s.index], s.reason) for s in ordering.skipped]
        return [steps[i] for i in ordering.order], skipped


class _ReadOnlyState:
    """Strategy state seen but never written (dry runs)."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner
        self.local: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        return self.local[key] if key in self.local else self.inner.get(key)

    def set(self, key: str, value: Any) -> None:
        self.local[key] = value

    def advance(self, key: str, step: Advance) -> Any:
        new = step.apply(self.get(key))
        self.local[key] = new
        return new
