import pytest

from router.errors import BadRequest, NotFound
from router.store import keys

from .conftest import DbTarget


def test_create_shows_key_once_and_verifies(db: DbTarget) -> None:
    record, full = keys.create("laptop")
    assert full.startswith("sk-llmtap-") and len(full) > 40
    assert record.key_preview == "…" + full[-4:]
    assert keys.verify(full) == record
    assert keys.verify(full + "x") is None
    assert keys.verify("sk-other-" + full) is None
    assert keys.verify("") is None
    assert "sk-llmtap" not in record.model_dump_json()


def test_list_get_update_delete(db: DbTarget) -> None:
    a, full_a = keys.create("a")
    b, _ = keys.create("b")
    assert [k.id for k in keys.list_all()] == [a.id, b.id]
    assert keys.get(a.id).label == "a"
    updated = keys.update(a.id, label="renamed", is_active=False)
    assert (updated.label, updated.is_active) == ("renamed", False)
    assert keys.verify(full_a) is None  # inactive keys do not authenticate
    keys.update(a.id, is_active=True)
    assert keys.verify(full_a) is not None
    keys.delete(a.id)
    assert keys.verify(full_a) is None
    for call in (lambda: keys.get(a.id), lambda: keys.delete(a.id), lambda: keys.update(a.id)):
        with pytest.raises(NotFound):
            call()


def test_label_required(db: DbTarget) -> None:
    with pytest.raises(BadRequest) as info:
        keys.create("  ")
    assert info.value.details[0].field == "label"
    assert keys.list_all() == []


def test_a_verified_key_is_kept_in_memory_until_keys_change(db: DbTarget) -> None:
    """The request path reads a known key from memory; any change to keys (here, or
    announced by another instance: ``forget``) makes the next check read the database."""
    from router.store.db import database, execute

    record, full = keys.create("kept")
    assert keys.verify(full) == record
    # Revoked behind the store's back (as another instance would): still in memory ...
    execute(database, "UPDATE api_key SET is_active = ? WHERE id = ?", (False, record.id))
    assert keys.verify(full) == record
    # ... until the change is announced (the gateway's feed calls forget).
    keys.forget()
    assert keys.verify(full) is None
    # A change made through this process drops the copy itself.
    keys.update(record.id, is_active=True)
    assert keys.verify(full) is not None
    keys.update(record.id, is_active=False)
    assert keys.verify(full) is None
    keys.update(record.id, is_active=True)
    assert keys.verify(full) is not None
    keys.delete(record.id)
    assert keys.verify(full) is None
