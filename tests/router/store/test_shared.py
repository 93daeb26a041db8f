"""Shared state on PostgreSQL: atomic strategy-state advances and the change feed."""

from __future__ import annotations

import threading
import time
from typing import Any

from router.store import shared
from router.store.db import close_database, open_database
from router.store.shared import (
    ChangeFeed,
    SharedBreakers,
    SharedLeases,
    SharedState,
    announce_change,
)

from .conftest import on_connections


def test_concurrent_advances_never_take_the_same_turn(postgres_url: str) -> None:
    """Eight threads (eight connections, as eight instances would be) each take 50 turns:
    every ticket from 0 to 399 is handed out exactly once."""
    open_database(postgres_url)
    state = SharedState()
    tickets: list[int] = []
    lock = threading.Lock()

    def take(old: Any) -> tuple[int, int]:
        current = old if isinstance(old, int) else 0
        return current + 1, current

    def worker() -> None:
        for _ in range(50):
            ticket = state.update("round-robin:c", take)
            with lock:
                tickets.append(ticket)

    errors = on_connections(8, worker)
    try:
        assert errors == []
        assert sorted(tickets) == list(range(400))
        assert state.get("round-robin:c") == 400
    finally:
        close_database()


def test_announce_is_silent_on_sqlite(tmp_path: Any) -> None:
    open_database(tmp_path / "x.db")
    try:
        assert announce_change() is None
    finally:
        close_database()


def test_change_feed_hears_other_instances_not_itself(postgres_url: str) -> None:
    open_database(postgres_url)
    heard: list[str] = []
    feed = ChangeFeed(postgres_url, lambda: heard.append("b"), instance_id="b", poll_s=0.2)
    feed.start()
    try:
        time.sleep(0.5)  # listening
        feed.announce()  # its own change: no reload
        time.sleep(0.6)
        assert heard == []
        announce_change(instance_id="a")
        deadline = time.monotonic() + 5
        while not heard and time.monotonic() < deadline:
            time.sleep(0.02)
        assert heard == ["b"]
    finally:
        feed.close()
        close_database()


def test_change_feed_polls_when_a_notification_is_missed(postgres_url: str) -> None:
    """A change whose NOTIFY never arrived (here: the counter bumped by hand) is still seen
    by the poll."""
    open_database(postgres_url)
    heard: list[int] = []
    feed = ChangeFeed(postgres_url, lambda: heard.append(1), instance_id="b", poll_s=0.2)
    feed.start()
    try:
        time.sleep(0.5)
        shared.execute(shared.database, "UPDATE shared_epoch SET n = n + 1 WHERE name = 'config'")
        deadline = time.monotonic() + 5
        while not heard and time.monotonic() < deadline:
            time.sleep(0.02)
        assert heard == [1]
    finally:
        feed.close()
        close_database()


def test_leases_count_across_instances_and_expire_with_theirs(postgres_url: str) -> None:
    open_database(postgres_url)
    try:
        a = SharedLeases(instance_id="a", ttl_s=0.5)
        b = SharedLeases(instance_id="b", ttl_s=60)
        first = a.try_acquire("conn", 2)
        second = b.try_acquire("conn", 2)
        assert first and second
        assert b.try_acquire("conn", 2) is None  # full, whoever holds the slots
        b.release(second)
        third = b.try_acquire("conn", 2)
        assert third is not None
        assert a.try_acquire("other", 1) is not None  # per connection
        # Instance a dies (no renewals): its leases run out, b's stay.
        time.sleep(0.7)
        assert b.held("conn") == 1
        assert b.try_acquire("conn", 2) is not None
    finally:
        close_database()


def test_breakers_are_shared_and_one_instance_probes(postgres_url: str) -> None:
    """Two registries (two instances) on one database: a breaker opened by one is refused by
    the other; after the cooldown exactly one of them gets the probe; its success closes the
    breaker for both."""
    import psycopg

    from router.routing.breaker import BreakerRegistry, ResilienceSettings

    open_database(postgres_url)
    settings = ResilienceSettings(failureThreshold=1, cooldownSeconds=0.3)
    shares = [SharedBreakers(), SharedBreakers()]
    a, b = (BreakerRegistry(settings, share=s) for s in shares)
    try:
        with psycopg.connect(postgres_url, autocommit=True) as conn:

            def refresh() -> None:  # what each instance's feed thread does on a NOTIFY
                for share in shares:
                    share.refresh(conn)

            assert a.allow("c", "m") == (True, None)
            a.on_failure("c", breaker_worthy=True, model="m")
            refresh()
            assert b.peek("c", "m") == (False, "breaker_open")
            time.sleep(0.35)
            refresh()
            first = b.allow("c", "m")
            second = a.allow("c", "m")
            assert first == (True, None)  # b won the probe
            assert second == (False, "probe_in_flight")
            b.on_success("c", "m")
            refresh()
            assert a.allow("c", "m") == (True, None)
            assert b.allow("c", "m") == (True, None)

            a.on_failure("c", breaker_worthy=False, rate_limited=True, retry_after=30, model="m")
            refresh()
            assert b.peek("c", "m") == (False, "rate_limited")
            assert b.peek("c", "other") == (True, None)
    finally:
        close_database()
