import pytest

from router.errors import BadRequest, Conflict, NotFound
from router.store import combos, providers
from router.store.records import (
    Combo,
    ComboCreate,
    ComboNode,
    ComboPatch,
    ProviderConnectionCreate,
)

from .conftest import DbTarget, count_rows


@pytest.fixture
def conn_id(db: DbTarget) -> str:
    return providers.create(
        ProviderConnectionCreate(provider="openai", url="https://api.openai.com/v1")
    ).id


def _combo(name: str, nodes: list[dict[str, object]], strategy: str = "priority") -> Combo:
    return combos.create(
        ComboCreate.model_validate({"name": name, "strategy": strategy, "nodes": nodes})
    )


def test_create_get_list_update_delete(conn_id: str) -> None:
    combo = _combo("fast", [{"connectionId": conn_id, "model": "gpt-4o-mini", "weight": 2}])
    assert combo.strategy == "priority"
    assert combo.nodes[0].connection_id == conn_id and combo.nodes[0].weight == 2
    assert combos.get(combo.id) == combo
    assert combos.get_by_name("fast") == combo
    assert [c.name for c in combos.list_all()] == ["fast"]
    updated = combos.update(combo.id, ComboPatch(strategy="round-robin", model="gpt-4o"))
    assert updated.strategy == "round-robin" and updated.model == "gpt-4o"
    assert updated.nodes == combo.nodes
    combos.delete(combo.id)
    with pytest.raises(NotFound):
        combos.get(combo.id)
    with pytest.raises(NotFound):
        combos.get_by_name("fast")
    with pytest.raises(NotFound):
        combos.update(combo.id, ComboPatch(name="x"))
    with pytest.raises(NotFound):
        combos.delete(combo.id)


def test_validation_reports_every_field_and_writes_nothing(conn_id: str) -> None:
    _combo("existing", [{"connectionId": conn_id}])
    before = count_rows("combo")
    # Built unvalidated: the API's models refuse a negative weight already (web layer), and
    # the store must still check what a direct caller hands it.
    nodes = [
        ComboNode.model_construct(connection_id="missing"),
        ComboNode.model_construct(connection_id=conn_id, weight=-1),
        ComboNode.model_construct(combo="nope"),
        ComboNode.model_construct(),
    ]
    with pytest.raises(BadRequest) as info:
        combos.create(ComboCreate.model_construct(name="bad", strategy="fastest", nodes=nodes))
    fields = {d.field for d in info.value.details}
    assert fields == {
        "strategy",
        "nodes.0.connectionId",
        "nodes.1.weight",
        "nodes.2.combo",
        "nodes.3",
    }
    assert count_rows("combo") == before


def test_duplicate_name(conn_id: str) -> None:
    _combo("dup", [{"connectionId": conn_id}])
    with pytest.raises(Conflict):
        _combo("dup", [{"connectionId": conn_id}])
    other = _combo("other", [{"connectionId": conn_id}])
    with pytest.raises(Conflict):
        combos.update(other.id, ComboPatch(name="dup"))
    assert count_rows("combo") == 2
    assert combos.get(other.id).name == "other"


def test_cycles_are_rejected(conn_id: str) -> None:
    a = _combo("a", [{"connectionId": conn_id}])
    _combo("b", [{"combo": "a"}])
    _combo("c", [{"combo": "b"}, {"connectionId": conn_id}])
    with pytest.raises(BadRequest) as info:
        _combo("self", [{"combo": "self"}])
    assert "self -> self" in info.value.details[0].message
    before = combos.get(a.id)
    with pytest.raises(BadRequest) as info:
        combos.update(a.id, ComboPatch.model_validate({"nodes": [{"combo": "c"}]}))
    assert info.value.details[0].field == "nodes"
    assert "a -> c -> b -> a" in info.value.details[0].message
    assert combos.get(a.id) == before  # nothing partially written


def test_rename_follows_nested_references(conn_id: str) -> None:
    inner = _combo("inner", [{"connectionId": conn_id}])
    outer = _combo("outer", [{"combo": "inner"}])
    combos.update(inner.id, ComboPatch(name="core"))
    assert combos.get(outer.id).nodes[0].combo == "core"


def test_delete_refused_while_nested(conn_id: str) -> None:
    inner = _combo("inner", [{"connectionId": conn_id}])
    outer = _combo("outer", [{"combo": "inner"}])
    with pytest.raises(Conflict) as info:
        combos.delete(inner.id)
    assert "outer" in info.value.message
    combos.delete(outer.id)
    combos.delete(inner.id)
    assert combos.list_all() == []
