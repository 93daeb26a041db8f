from datetime import UTC, datetime

import pytest

from router.errors import BadRequest, Conflict, NotFound
from router.store import providers
from router.store.records import (
    ProviderConnection,
    ProviderConnectionCreate,
    ProviderConnectionPatch,
)

from .conftest import DbTarget


def _create(**kw: object) -> ProviderConnection:
    data = {"provider": "openai", "url": "https://api.openai.com/v1/", **kw}
    return providers.create(ProviderConnectionCreate.model_validate(data))


def test_create_get_list(db: DbTarget) -> None:
    conn = _create(name="main", apiKey="sk-abcdefghijklmnop", maxConcurrent=2, priority=1)
    assert len(conn.id) == 32
    assert conn.url == "https://api.openai.com/v1"
    assert conn.key_preview == "…mnop"
    assert conn.created_at is not None and conn.created_at.tzinfo is not None
    fetched = providers.get(conn.id)
    assert fetched == conn
    assert fetched.api_key == "sk-abcdefghijklmnop"  # the providers need it
    dumped = fetched.model_dump_json(by_alias=True)
    assert "abcdefghijklmnop" not in dumped and '"keyPreview":"…mnop"' in dumped
    second = _create(provider="anthropic", url="https://api.anthropic.com", priority=0)
    assert [c.id for c in providers.list_all()] == [second.id, conn.id]  # by priority


def test_default_names_are_unique(db: DbTarget) -> None:
    names = [_create().name for _ in range(3)]
    assert names == ["openai", "openai-2", "openai-3"]


def test_duplicate_name_conflicts(db: DbTarget) -> None:
    _create(name="x")
    with pytest.raises(Conflict):
        _create(name="x")
    other = _create(name="y")
    with pytest.raises(Conflict):
        providers.update(other.id, ProviderConnectionPatch(name="x"))
    assert providers.get(other.id).name == "y"


def test_validation_details(db: DbTarget) -> None:
    # Built unvalidated: the API's model refuses maxConcurrent=-1 already, and the store must
    # still check what a direct caller hands it.
    bad = ProviderConnectionCreate.model_construct(
        provider="cohere", url="ftp://x", max_concurrent=-1
    )
    with pytest.raises(BadRequest) as info:
        providers.create(bad)
    fields = {d.field for d in info.value.details}
    assert fields == {"provider", "url", "maxConcurrent"}
    assert providers.list_all() == []


def test_partial_update(db: DbTarget) -> None:
    conn = _create(name="a", apiKey="sk-0123456789abcdef", maxConcurrent=3)
    updated = providers.update(conn.id, ProviderConnectionPatch.model_validate({"isActive": False}))
    assert updated.is_active is False
    assert updated.name == "a" and updated.max_concurrent == 3
    assert updated.api_key == "sk-0123456789abcdef"
    cleared = providers.update(
        conn.id, ProviderConnectionPatch.model_validate({"maxConcurrent": None, "apiKey": ""})
    )
    assert cleared.max_concurrent is None and cleared.api_key is None
    assert cleared.key_preview is None
    with pytest.raises(NotFound):
        providers.update("nope", ProviderConnectionPatch(priority=1))


def test_delete_and_not_found(db: DbTarget) -> None:
    conn = _create()
    providers.delete(conn.id)
    with pytest.raises(NotFound):
        providers.get(conn.id)
    with pytest.raises(NotFound):
        providers.delete(conn.id)


def test_test_status_and_models(db: DbTarget) -> None:
    conn = _create()
    assert providers.set_test_status(conn.id, "active").test_status == "active"
    assert providers.set_models(conn.id, ["gpt-4o", "gpt-4o", "o3"]).models == ["gpt-4o", "o3"]
    assert providers.get(conn.id).models == ["gpt-4o", "o3"]
    with pytest.raises(NotFound):
        providers.set_test_status("nope", "error")


def test_models_cache(db: DbTarget) -> None:
    conn = _create()
    assert providers.get_cached_models(conn.id) is None
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    providers.set_cached_models(conn.id, ["a", "b"], at=at)
    providers.set_cached_models(conn.id, ["c"], at=at)
    cached = providers.get_cached_models(conn.id)
    assert cached is not None and cached.models == ["c"] and cached.fetched_at == at
    with pytest.raises(NotFound):
        providers.set_cached_models("nope", [])
    providers.delete(conn.id)  # cascades to the cache row
    assert providers.get_cached_models(conn.id) is None


def test_provider_urls_must_be_forgiving_at_write_time(db: DbTarget) -> None:
    conn = _create(provider="anthropic", url="https://api.anthropic.com")
    assert conn.url == "https://api.anthropic.com/v1"
    assert providers.get(conn.id).url == "https://api.anthropic.com/v1"
    patched = providers.update(
        conn.id, ProviderConnectionPatch(url="https://API.anthropic.com/v1/messages/")
    )
    assert patched.url == "https://api.anthropic.com/v1"
    # A new kind re-shapes the stored URL for that kind.
    gem = providers.update(
        conn.id,
        ProviderConnectionPatch(provider="gemini", url="https://generativelanguage.googleapis.com"),
    )
    assert gem.url == "https://generativelanguage.googleapis.com/v1beta"
    with pytest.raises(BadRequest) as info:
        providers.update(conn.id, ProviderConnectionPatch(url="not a url"))
    assert [d.field for d in info.value.details] == ["url"]
