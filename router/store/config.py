"""Small routing configuration: model aliases, fallback chains, pricing overrides, settings,
resilience settings and persisted router state (round-robin positions, strict-random decks)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.errors import BadRequest, FieldError, NotFound
from router.store.db import database, upsert
from router.store.records import FallbackChain, FallbackLink, ModelAlias, ModelPrice
from router.store.tables import (
    FallbackChainRow,
    ModelAliasRow,
    ModelPriceRow,
    ResilienceRow,
    RouterStateRow,
    SettingRow,
)

# --------------------------------------------------------------------------- aliases


def set_alias(alias: str, target: str) -> ModelAlias:
    errors = [
        FieldError(field, "must not be empty")
        for field, value in (("alias", alias), ("target", target))
        if not value.strip()
    ]
    if alias.strip() and alias.strip() == target.strip():
        errors.append(FieldError("target", "an alias cannot point at itself"))
    if errors:
        raise BadRequest("invalid alias", errors)
    record = ModelAlias(alias=alias.strip(), target=target.strip())
    upsert(ModelAliasRow, name=record.alias, target=record.target)
    return record


def list_aliases() -> list[ModelAlias]:
    rows = ModelAliasRow.select().order_by(ModelAliasRow.name)
    return [ModelAlias(alias=r.name, target=r.target) for r in rows]


def delete_alias(alias: str) -> None:
    if not ModelAliasRow.delete().where(ModelAliasRow.name == alias).execute():
        raise NotFound(f"alias '{alias}' not found")


# --------------------------------------------------------------------------- fallback chains


def set_chain(chain: FallbackChain) -> FallbackChain:
    errors: list[FieldError] = []
    if not chain.model.strip():
        errors.append(FieldError("model", "must not be empty"))
    errors += [
        FieldError(f"chain.{i}.provider", "must not be empty")
        for i, link in enumerate(chain.chain)
        if not link.provider.strip()
    ]
    if errors:
        raise BadRequest("invalid fallback chain", errors)
    links = sorted(chain.chain, key=lambda link: link.priority)  # stable: list order breaks ties
    record = FallbackChain(model=chain.model.strip(), chain=links)
    upsert(FallbackChainRow, model=record.model, chain=[link.model_dump() for link in links])
    return record


def list_chains() -> list[FallbackChain]:
    rows = FallbackChainRow.select().order_by(FallbackChainRow.model)
    return [
        FallbackChain(model=r.model, chain=[FallbackLink.model_validate(x) for x in r.chain])
        for r in rows
    ]


def delete_chain(model: str) -> None:
    if not FallbackChainRow.delete().where(FallbackChainRow.model == model).execute():
        raise NotFound(f"fallback chain for '{model}' not found")


# --------------------------------------------------------------------------- pricing overrides


def upsert_price(price: ModelPrice) -> ModelPrice:
    errors = [
        FieldError(name, "must be >= 0")
        for name in ("input", "output", "cached", "cache_creation", "reasoning")
        if (value := getattr(price, name)) is not None and value < 0
    ]
    if not price.model.strip():
        errors.append(FieldError("model", "must not be empty"))
    if errors:
        raise BadRequest("invalid price", errors)
    upsert(ModelPriceRow, model=price.model, data=price.model_dump(exclude_none=True))
    return price


def list_prices() -> list[ModelPrice]:
    rows = ModelPriceRow.select().order_by(ModelPriceRow.model)
    return [ModelPrice.model_validate(r.data) for r in rows]


def delete_price(model: str) -> None:
    if not ModelPriceRow.delete().where(ModelPriceRow.model == model).execute():
        raise NotFound(f"no price override for '{model}'")


# --------------------------------------------------------------------------- key/value tables
# Values are JSON; the callers (settings.py, routing/) own their meaning and validation.


def get_settings() -> dict[str, Any]:
    return {r.key: r.value for r in SettingRow.select()}


def set_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """Upsert every given key at once; ``None`` removes a key (back to the default)."""
    with database.atomic():
        for key, value in values.items():
            if value is None:
                SettingRow.delete().where(SettingRow.key == key).execute()
            else:
                upsert(SettingRow, key=key, value=value)
    return get_settings()


def get_resilience() -> dict[str, Any]:
    return {r.key: r.value for r in ResilienceRow.select()}


def set_resilience(values: Mapping[str, Any]) -> dict[str, Any]:
    with database.atomic():
        for key, value in values.items():
            if value is None:
                ResilienceRow.delete().where(ResilienceRow.key == key).execute()
            else:
                upsert(ResilienceRow, key=key, value=value)
    return get_resilience()


def get_state(key: str, default: Any = None) -> Any:
    row = RouterStateRow.get_or_none(RouterStateRow.key == key)
    return default if row is None else row.value


def set_state(key: str, value: Any) -> None:
    upsert(RouterStateRow, key=key, value=value)


def set_states(values: Mapping[str, Any]) -> None:
    """Many state keys in one transaction (what a batching writer's sink wants)."""
    with database.atomic():
        for key, value in values.items():
            set_state(key, value)


def all_states() -> dict[str, Any]:
    """Every router state key (loaded once at start into the in-memory strategy state)."""
    return {row.key: row.value for row in RouterStateRow.select()}
