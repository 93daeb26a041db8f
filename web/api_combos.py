"""Management API for routing: combos (+ metrics, dry-run plans), model aliases, fallback chains."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from router.catalog import Catalog
from router.errors import BadRequest, Conflict, FieldError
from router.routing.resolve import Plan
from router.routing.stats import node_key
from router.store import combos as store
from router.store import config as store_config
from router.store.records import (
    Combo,
    ComboCreate,
    ComboNode,
    ComboPatch,
    FallbackChain,
    ModelAlias,
    ModelName,
    RefName,
)
from web.context import reply, runtime
from web.errors import read_json
from web.openapi import Deleted, Param, doc
from web.validation import parse_body

routes = web.RouteTableDef()


class ComboList(BaseModel):
    combos: list[Combo]


def _check_node_models(model: str | None, nodes: list[ComboNode]) -> None:
    """A connection node must say which upstream model to ask for, itself or via the combo."""
    errors = [
        FieldError(f"nodes.{i}.model", "required when the combo has no 'model'")
        for i, n in enumerate(nodes)
        if n.connection_id and not (n.model or model)
    ]
    if errors:
        raise BadRequest("invalid combo", errors)


# --------------------------------------------------------------------------- metrics


class NodeMetrics(BaseModel):
    connection_id: str | None = Field(default=None, serialization_alias="connectionId")
    connection: str | None = None
    combo: str | None = None
    model: str | None = None
    weight: float
    priority: int
    requests: int = 0
    failures: int = 0
    avg_latency_ms: float | None = Field(default=None, serialization_alias="avgLatencyMs")
    last_used: datetime | None = Field(default=None, serialization_alias="lastUsed")
    breaker: str = "closed"


class ComboMetrics(BaseModel):
    id: str
    name: str
    strategy: str
    requests: int = 0
    failures: int = 0
    avg_latency_ms: float | None = Field(default=None, serialization_alias="avgLatencyMs")
    last_used: datetime | None = Field(default=None, serialization_alias="lastUsed")
    nodes: list[NodeMetrics]


class MetricsList(BaseModel):
    combos: list[ComboMetrics]
    breakers: dict[str, dict[str, Any]]
    tracked: bool  # False: this runtime keeps no routing stats, every figure is zero


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _totals(nodes: list[NodeMetrics]) -> dict[str, Any]:
    requests = sum(n.requests for n in nodes)
    timed = [(n.avg_latency_ms, n.requests - n.failures) for n in nodes if n.avg_latency_ms]
    weight = sum(w for _, w in timed)
    used = [n.last_used for n in nodes if n.last_used is not None]
    return {
        "requests": requests,
        "failures": sum(n.failures for n in nodes),
        "avg_latency_ms": round(sum(a * w for a, w in timed) / weight, 2) if weight else None,
        "last_used": max(used) if used else None,
    }


def combo_metrics(request: web.Request) -> MetricsList:
    # Stats are per node (connection, model), so two combos sharing a node show the same figures.
    guard = getattr(runtime(request), "guard", None)
    breakers: dict[str, dict[str, Any]] = guard.breakers.snapshot() if guard else {}
    stats: dict[str, dict[str, Any]] = guard.stats.snapshot() if guard else {}
    conns = runtime(request).catalog.connections
    combos = {c.name: c for c in store.list_all()}
    done: dict[str, ComboMetrics] = {}

    def build(combo: Combo, seen: frozenset[str]) -> ComboMetrics:
        if combo.name in done:
            return done[combo.name]
        nodes: list[NodeMetrics] = []
        for n in combo.nodes:
            base = {"weight": n.weight, "priority": n.priority, "model": n.model or combo.model}
            nested = combos.get(n.combo or "")
            if nested is not None and nested.name not in seen:
                inner = build(nested, seen | {combo.name})
                nodes.append(NodeMetrics(combo=nested.name, **base, **_totals(inner.nodes)))
                continue
            cid = n.connection_id or ""
            s = stats.get(node_key(cid, n.model or combo.model or ""), {})
            nodes.append(
                NodeMetrics(
                    connection_id=n.connection_id,
                    connection=conns[cid].name if cid in conns else None,
                    combo=n.combo,
                    requests=s.get("requests", 0),
                    failures=s.get("failures", 0),
                    avg_latency_ms=s.get("avgLatencyMs"),
                    last_used=_when(s.get("lastUsed")),
                    breaker=breakers.get(cid, {}).get("state", "closed"),
                    **base,
                )
            )
        done[combo.name] = ComboMetrics(
            id=combo.id, name=combo.name, strategy=combo.strategy, nodes=nodes, **_totals(nodes)
        )
        return done[combo.name]

    return MetricsList(
        combos=[build(c, frozenset()) for c in combos.values()],
        breakers=breakers,
        tracked=guard is not None,
    )


# --------------------------------------------------------------------------- dry run


class ComboTest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)


class PlannedStep(BaseModel):
    position: int
    connection_id: str = Field(serialization_alias="connectionId")
    connection: str
    provider: str
    model: str
    via: str
    combo: str | None = None
    weight: float
    priority: int
    breaker: str = "closed"
    # Set when the guard would pass this step over right now (breaker, 429 cooldown, full).
    skip_reason: str | None = Field(default=None, serialization_alias="skipReason")


class SkippedNode(BaseModel):
    connection_id: str | None = Field(default=None, serialization_alias="connectionId")
    connection: str | None = None
    model: str | None = None
    combo: str | None = None
    reason: str


class PlanView(BaseModel):
    model: str
    combo: str | None = None
    strategy: str | None = None
    steps: list[PlannedStep]
    skipped: list[SkippedNode]


def _inactive(cat: Catalog, name: str, seen: set[str]) -> list[SkippedNode]:
    """Combo nodes the resolver drops silently: their connection is gone or switched off."""
    combo = cat.combos.get(name)
    if combo is None or name in seen:
        return []
    seen.add(name)
    out: list[SkippedNode] = []
    for n in combo.nodes:
        if n.combo:
            out += _inactive(cat, n.combo, seen)
            continue
        conn = cat.connections.get(n.connection_id or "")
        if conn is None or not conn.is_active:
            out.append(
                SkippedNode(
                    connection_id=n.connection_id,
                    connection=conn.name if conn else None,
                    model=n.model or combo.model,
                    combo=name,
                    reason="connection_missing" if conn is None else "connection_inactive",
                )
            )
    return out


def plan_view(request: web.Request, plan: Plan) -> PlanView:
    rt = runtime(request)
    guard = getattr(rt, "guard", None)
    steps: list[PlannedStep] = []
    for i, step in enumerate(plan.steps):
        reason: str | None = None
        state = "closed"
        if guard is not None:
            ok, why = guard.breakers.peek(step.connection.id, step.model)
            state = guard.breakers.state(step.connection.id).value
            if not ok:
                reason = why
            elif guard.limiter.is_full(step.connection.id):
                reason = "at_capacity"
        steps.append(
            PlannedStep(
                position=i + 1,
                connection_id=step.connection.id,
                connection=step.connection.name,
                provider=step.connection.provider,
                model=step.model,
                via=step.via,
                combo=step.combo,
                weight=step.weight,
                priority=step.priority,
                breaker=state,
                skip_reason=reason,
            )
        )
    skipped = [
        SkippedNode(
            connection_id=s.step.connection.id,
            connection=s.step.connection.name,
            model=s.step.model,
            combo=s.step.combo,
            reason=s.reason,
        )
        for s in plan.skipped
    ]
    combo = rt.catalog.combos.get(plan.combo or "")
    if combo is not None:
        skipped += _inactive(rt.catalog, combo.name, set())
    return PlanView(
        model=plan.requested,
        combo=plan.combo,
        strategy=combo.strategy if combo else None,
        steps=steps,
        skipped=skipped,
    )


# --------------------------------------------------------------------------- combos


@routes.get("/api/combos")
@doc("list combos", response=ComboList)
async def list_combos(request: web.Request) -> web.Response:
    return reply(ComboList(combos=store.list_all()))


@routes.post("/api/combos")
@doc("create a combo", request=ComboCreate, response=Combo, status=201, errors=(409,))
async def create_combo(request: web.Request) -> web.Response:
    data = parse_body(ComboCreate, await read_json(request))
    _check_node_models(data.model, data.nodes)
    combo = store.create(data)
    runtime(request).reload_catalog()
    return reply(combo, status=201)


@routes.get("/api/combos/metrics")
@doc("per combo and node: requests, failures, average latency, last use, breaker state",
     response=MetricsList)  # fmt: skip
async def metrics(request: web.Request) -> web.Response:
    return reply(combo_metrics(request))


@routes.post("/api/combos/test")
@doc("dry run: the ordered attempt plan for a model name, with skip reasons",
     request=ComboTest, response=PlanView, errors=(404,))  # fmt: skip
async def test_combo(request: web.Request) -> web.Response:
    data = parse_body(ComboTest, await read_json(request))
    return reply(
        plan_view(request, runtime(request).router.resolver.plan(data.model, dry_run=True))
    )


@routes.get("/api/combos/{id}")
@doc("one combo", response=Combo)
async def get_combo(request: web.Request) -> web.Response:
    return reply(store.get(request.match_info["id"]))


@routes.patch("/api/combos/{id}")
@doc("update a combo (only the fields sent)", request=ComboPatch, response=Combo, errors=(409,))
async def patch_combo(request: web.Request) -> web.Response:
    patch = parse_body(ComboPatch, await read_json(request))
    current = store.get(request.match_info["id"])
    model = patch.model if "model" in patch.model_fields_set else current.model
    _check_node_models(model, current.nodes if patch.nodes is None else patch.nodes)
    combo = store.update(current.id, patch)
    runtime(request).reload_catalog()
    return reply(combo)


@routes.delete("/api/combos/{id}")
@doc("delete a combo", response=Deleted, errors=(409,))
async def delete_combo(request: web.Request) -> web.Response:
    store.delete(request.match_info["id"])
    runtime(request).reload_catalog()
    return reply(Deleted())


# --------------------------------------------------------------------------- models, aliases


class AliasSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alias: RefName
    target: ModelName


class ModelId(BaseModel):
    id: str
    owned_by: str = Field(serialization_alias="ownedBy")


class ModelsView(BaseModel):
    aliases: list[ModelAlias]
    models: list[ModelId]


def _check_alias(cat: Catalog, alias: str, target: str) -> None:
    alias, target = alias.strip(), target.strip()
    errors: list[FieldError] = []
    ref, sep, name = target.partition("/")
    names_connection = bool(sep and name and cat.connection_by_ref(ref))
    if not names_connection and target not in cat.combos:
        errors.append(
            FieldError(
                "target", "must be 'provider/model' naming an existing connection, or a combo"
            )
        )
    head, sep, _ = alias.partition("/")
    if sep and cat.connection_by_ref(head):
        errors.append(
            FieldError("alias", f"'{head}/' names a connection; the alias would never match")
        )
    if alias == target:
        errors.append(FieldError("target", "an alias cannot point at itself"))
    if errors:
        raise BadRequest("invalid alias", errors)
    if alias in cat.combos:
        raise Conflict(f"a combo named '{alias}' exists; an alias would hide it")


@routes.get("/api/models")
@doc("aliases and every model id clients may ask for", response=ModelsView)
async def list_models(request: web.Request) -> web.Response:
    cat = runtime(request).catalog
    aliases = store_config.list_aliases()
    ids = [ModelId(id=name, owned_by=owner) for name, owner in cat.model_ids()]
    return reply(ModelsView(aliases=aliases, models=ids))


@routes.post("/api/models/alias")
@doc("create or replace a model alias", request=AliasSet, response=ModelAlias, errors=(409,))
async def set_alias(request: web.Request) -> web.Response:
    data = parse_body(AliasSet, await read_json(request))
    rt = runtime(request)
    _check_alias(rt.catalog, data.alias, data.target)
    alias = store_config.set_alias(data.alias, data.target)
    rt.reload_catalog()
    return reply(alias)


@routes.delete("/api/models/alias/{alias:.+}")
@doc("delete a model alias", response=Deleted)
async def delete_alias(request: web.Request) -> web.Response:
    store_config.delete_alias(request.match_info["alias"])
    runtime(request).reload_catalog()
    return reply(Deleted())


# --------------------------------------------------------------------------- fallback chains


class ChainList(BaseModel):
    chains: list[FallbackChain]


def _check_chain(cat: Catalog, chain: FallbackChain) -> None:
    errors = [
        FieldError(f"chain.{i}.provider", f"unknown provider connection '{link.provider}'")
        for i, link in enumerate(chain.chain)
        if link.provider.strip() and not cat.connection_by_ref(link.provider.partition("/")[0])
    ]
    if not chain.chain:
        errors.append(FieldError("chain", "must list at least one provider"))
    if errors:
        raise BadRequest("invalid fallback chain", errors)


@routes.get("/api/fallback/chains")
@doc("global fallback chains", response=ChainList)
async def list_chains(request: web.Request) -> web.Response:
    return reply(ChainList(chains=store_config.list_chains()))


@routes.post("/api/fallback/chains")
@doc("create or replace the fallback chain of a model", request=FallbackChain,
     response=FallbackChain)  # fmt: skip
async def set_chain(request: web.Request) -> web.Response:
    chain = parse_body(FallbackChain, await read_json(request))
    rt = runtime(request)
    _check_chain(rt.catalog, chain)
    saved = store_config.set_chain(chain)
    rt.reload_catalog()
    return reply(saved)


MODEL_PARAM = Param("model", {"type": "string"}, "the model whose chain goes", required=True)


@routes.delete("/api/fallback/chains")
@doc("delete the fallback chain of ?model=", response=Deleted, query=(MODEL_PARAM,), errors=(404,))
async def delete_chain(request: web.Request) -> web.Response:
    model = request.query.get("model", "")
    if not model:
        raise BadRequest("'model' is required", [FieldError("model", "required query parameter")])
    store_config.delete_chain(model)
    runtime(request).reload_catalog()
    return reply(Deleted())
