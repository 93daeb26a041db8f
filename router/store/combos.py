"""Combos: named, ordered node lists with a strategy; validated whole, written atomically."""

from __future__ import annotations

import math

import peewee

from router.errors import BadRequest, Conflict, FieldError, NotFound
from router.store.db import database, new_id, utcnow
from router.store.records import STRATEGIES, Combo, ComboCreate, ComboNode, ComboPatch
from router.store.tables import ComboRow, ProviderConnectionRow


def _record(row: ComboRow) -> Combo:
    return Combo.model_validate(row)  # strategy checked against STRATEGIES on write


def _get_row(combo_id: str) -> ComboRow:
    return ComboRow.found(ComboRow.id == combo_id, f"combo '{combo_id}'")


def _children(nodes: list[ComboNode]) -> list[str]:
    return [n.combo for n in nodes if n.combo]


def _find_cycle(name: str, graph: dict[str, list[str]]) -> list[str] | None:
    """A path name -> ... -> name through nested combos, if there is one."""
    stack: list[tuple[str, list[str]]] = [(name, [name])]
    seen: set[str] = set()
    while stack:
        current, path = stack.pop()
        for child in graph.get(current, []):
            if child == name:
                return [*path, child]
            if child not in seen:
                seen.add(child)
                stack.append((child, [*path, child]))
    return None


def _validate(
    name: str, strategy: str, nodes: list[ComboNode], previous: ComboRow | None
) -> list[FieldError]:
    """Every problem at once, with the field path the client sent (``nodes.0.connectionId``)."""
    errors: list[FieldError] = []
    if not name.strip():
        errors.append(FieldError("name", "must not be empty"))
    if strategy not in STRATEGIES:
        errors.append(FieldError("strategy", f"unknown strategy; one of: {', '.join(STRATEGIES)}"))
    other_rows = [r for r in ComboRow.select() if previous is None or r.id != previous.id]
    graph = {r.name: _children([ComboNode.model_validate(n) for n in r.nodes]) for r in other_rows}
    graph[name] = _children(nodes)
    wanted = {n.connection_id for n in nodes if n.connection_id}
    known = {
        r.id
        for r in ProviderConnectionRow.select(ProviderConnectionRow.id).where(
            ProviderConnectionRow.id.in_(list(wanted))
        )
    }
    for i, node in enumerate(nodes):
        if bool(node.connection_id) == bool(node.combo):
            errors.append(FieldError(f"nodes.{i}", "needs exactly one of connectionId or combo"))
        if node.connection_id and node.connection_id not in known:
            errors.append(
                FieldError(
                    f"nodes.{i}.connectionId",
                    f"unknown provider connection '{node.connection_id}'",
                )
            )
        if node.combo and node.combo not in graph:
            errors.append(FieldError(f"nodes.{i}.combo", f"unknown combo '{node.combo}'"))
        if not math.isfinite(node.weight) or node.weight < 0:
            errors.append(FieldError(f"nodes.{i}.weight", "must be a finite number >= 0"))
    if cycle := _find_cycle(name, graph):
        errors.append(FieldError("nodes", "nested combos form a cycle: " + " -> ".join(cycle)))
    return errors


def _check_name_free(name: str, previous: ComboRow | None) -> None:
    query = ComboRow.select().where(ComboRow.name == name)
    if previous is not None:
        query = query.where(ComboRow.id != previous.id)
    if query.exists():
        raise Conflict(f"a combo named '{name}' already exists")


def _dump(nodes: list[ComboNode]) -> list[dict[str, object]]:
    return [n.model_dump() for n in nodes]


def create(data: ComboCreate) -> Combo:
    name = data.name.strip()
    with database.atomic():
        if errors := _validate(name, data.strategy, data.nodes, None):
            raise BadRequest("invalid combo", errors)
        _check_name_free(name, None)
        try:
            row = ComboRow.create(
                id=new_id(),
                name=name,
                model=data.model,
                strategy=data.strategy,
                nodes=_dump(data.nodes),
                created_at=utcnow(),
            )
        except peewee.IntegrityError as exc:
            raise Conflict(f"a combo named '{name}' already exists") from exc
    return _record(row)


def get(combo_id: str) -> Combo:
    return _record(_get_row(combo_id))


def get_by_name(name: str) -> Combo:
    row = ComboRow.get_or_none(ComboRow.name == name)
    if row is None:
        raise NotFound(f"combo '{name}' not found")
    return _record(row)


def list_all() -> list[Combo]:
    return [_record(r) for r in ComboRow.select().order_by(ComboRow.created_at)]


def update(combo_id: str, patch: ComboPatch) -> Combo:
    """Partial update. A rename also renames the nested references in other combos, in the
    same transaction, so no combo is left pointing at a name that no longer exists."""
    with database.atomic():
        row = _get_row(combo_id)
        old_name = row.name
        name = patch.name.strip() if patch.name is not None else row.name
        strategy = patch.strategy if patch.strategy is not None else row.strategy
        nodes = (
            patch.nodes
            if patch.nodes is not None
            else [ComboNode.model_validate(n) for n in row.nodes]
        )
        if name != old_name:
            nodes = [
                n.model_copy(update={"combo": name}) if n.combo == old_name else n for n in nodes
            ]
        if errors := _validate(name, strategy, nodes, row):
            raise BadRequest("invalid combo", errors)
        _check_name_free(name, row)
        row.name = name
        row.strategy = strategy
        row.nodes = _dump(nodes)
        if "model" in patch.model_fields_set:
            row.model = patch.model
        row.save()
        if name != old_name:
            for other in ComboRow.select().where(ComboRow.id != row.id):
                renamed = [
                    {**n, "combo": name} if n.get("combo") == old_name else n for n in other.nodes
                ]
                if renamed != other.nodes:
                    other.nodes = renamed
                    other.save()
    return _record(row)


def delete(combo_id: str) -> None:
    """Refused while another combo nests this one (it would silently lose a node)."""
    with database.atomic():
        row = _get_row(combo_id)
        users = [
            r.name
            for r in ComboRow.select()
            if r.id != row.id and any(n.get("combo") == row.name for n in r.nodes)
        ]
        if users:
            raise Conflict(f"combo '{row.name}' is used by: {', '.join(sorted(users))}")
        row.delete_instance()
