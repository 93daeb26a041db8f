from datetime import UTC, datetime

import pytest

from router.errors import BadRequest, Conflict, NotFound
from router.store import hosts

from .conftest import DbTarget


def test_crud(db: DbTarget) -> None:
    h = hosts.create("LLM.Example.com.", label="internal", kind="llm")
    assert (h.host, h.enabled, h.kind, h.label) == ("llm.example.com", True, "llm", "internal")
    assert hosts.get("llm.example.com") == h
    assert hosts.list_all() == [h]
    off = hosts.update("llm.example.com", enabled=False)
    assert off.enabled is False and off.kind == "llm"
    seen = datetime(2025, 1, 1, tzinfo=UTC)
    hosts.touch("LLM.example.com", at=seen)
    hosts.touch("unknown.example.com")  # ignored
    assert hosts.get("llm.example.com").last_seen_at == seen
    hosts.delete("llm.example.com")
    assert hosts.list_all() == []
    for call in (
        lambda: hosts.get("llm.example.com"),
        lambda: hosts.update("llm.example.com", enabled=True),
        lambda: hosts.delete("llm.example.com"),
    ):
        with pytest.raises(NotFound):
            call()


def test_duplicate_conflicts(db: DbTarget) -> None:
    hosts.create("a.example.com")
    with pytest.raises(Conflict):
        hosts.create("A.EXAMPLE.COM")


@pytest.mark.parametrize(
    "bad", ["", "https://x.com", "x.com/path", "*.x.com", "a b.com", "x.com:443"]
)
def test_rejects_non_hosts(db: DbTarget, bad: str) -> None:
    with pytest.raises(BadRequest) as info:
        hosts.create(bad)
    assert info.value.details[0].field == "host"
    assert hosts.list_all() == []


def test_kind_validated(db: DbTarget) -> None:
    with pytest.raises(BadRequest) as info:
        hosts.create("x.example.com", kind="api")
    assert info.value.details[0].field == "kind"
    hosts.create("x.example.com")
    with pytest.raises(BadRequest):
        hosts.update("x.example.com", kind="api")
