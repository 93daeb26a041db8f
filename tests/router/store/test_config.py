import pytest

from router.errors import BadRequest, NotFound
from router.store import config
from router.store.records import FallbackChain, FallbackLink, ModelPrice

from .conftest import DbTarget


def test_aliases(db: DbTarget) -> None:
    config.set_alias("fast", "openai/gpt-4o-mini")
    config.set_alias("fast", "my-combo")  # upsert
    config.set_alias("best", "anthropic/claude-opus-4")
    assert [(a.alias, a.target) for a in config.list_aliases()] == [
        ("best", "anthropic/claude-opus-4"),
        ("fast", "my-combo"),
    ]
    config.delete_alias("fast")
    assert [a.alias for a in config.list_aliases()] == ["best"]
    with pytest.raises(NotFound):
        config.delete_alias("fast")
    with pytest.raises(BadRequest) as info:
        config.set_alias("", "x")
    assert info.value.details[0].field == "alias"
    with pytest.raises(BadRequest):
        config.set_alias("loop", "loop")


def test_fallback_chains(db: DbTarget) -> None:
    chain = FallbackChain(
        model="gpt-4o",
        chain=[FallbackLink(provider="anthropic/claude-sonnet-4", priority=2),
               FallbackLink(provider="openai-backup", priority=1, enabled=False)],
    )  # fmt: skip
    stored = config.set_chain(chain)
    assert [link.provider for link in stored.chain] == [
        "openai-backup",
        "anthropic/claude-sonnet-4",
    ]
    assert config.list_chains() == [stored]
    with pytest.raises(BadRequest) as info:
        config.set_chain(FallbackChain(model="x", chain=[FallbackLink(provider=" ")]))
    assert info.value.details[0].field == "chain.0.provider"
    config.delete_chain("gpt-4o")
    assert config.list_chains() == []
    with pytest.raises(NotFound):
        config.delete_chain("gpt-4o")


def test_pricing_overrides(db: DbTarget) -> None:
    price = ModelPrice(model="my-model", input=1, output=2, cached=0.1, contextWindow=8000)
    config.upsert_price(price)
    config.upsert_price(price.model_copy(update={"output": 3.0}))
    assert config.list_prices() == [price.model_copy(update={"output": 3.0})]
    with pytest.raises(BadRequest) as info:
        config.upsert_price(ModelPrice(model="m", input=-1, output=1))
    assert info.value.details[0].field == "input"
    config.delete_price("my-model")
    assert config.list_prices() == []
    with pytest.raises(NotFound):
        config.delete_price("my-model")


def test_settings_and_resilience(db: DbTarget) -> None:
    assert config.get_settings() == {}
    assert config.set_settings({"require_api_key": True, "buffer_size": 50}) == {
        "require_api_key": True,
        "buffer_size": 50,
    }
    assert config.set_settings({"buffer_size": None}) == {"require_api_key": True}
    assert config.set_resilience({"failureThreshold": 3, "cooldownS": 10.5}) == {
        "failureThreshold": 3,
        "cooldownS": 10.5,
    }
    assert config.get_resilience()["cooldownS"] == 10.5


def test_router_state(db: DbTarget) -> None:
    assert config.get_state("rr:x") is None
    assert config.get_state("rr:x", 0) == 0
    config.set_state("rr:x", 1)
    config.set_states({"rr:x": 2, "deck:x": ["n1", "n2"]})
    assert config.get_state("rr:x") == 2
    assert config.get_state("deck:x") == ["n1", "n2"]
    assert config.all_states() == {"rr:x": 2, "deck:x": ["n1", "n2"]}
