"""Shared state on PostgreSQL: atomic strategy-state advances and the change feed."""

from __future__ import annotations

import collections
import random
import threading
import time
from typing import Any

import pytest

from router.store import shared
from router.store.advance import Draw, Turn
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
    """Eight threads (eight connections, as eight instances would be) each take 50 turns of
    a 400-node round-robin: every node from 0 to 399 is served exactly once."""
    open_database(postgres_url)
    state = SharedState()
    turn = Turn(400, tuple(range(400)), ())
    served: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            chosen = turn.chosen(state.advance("round-robin:c", turn))
            with lock:
                served.append(chosen)

    errors = on_connections(8, worker)
    try:
        assert errors == []
        assert sorted(served) == list(range(400))
        assert state.get("round-robin:c") == 0
    finally:
        close_database()


def test_concurrent_draws_deal_each_card_once_per_deck(postgres_url: str) -> None:
    """Six threads draw 30 cards each from one shared six-card deck: every card is dealt 30
    times (whole decks), and every draw leaves a remainder one card smaller that lacks the
    card drawn (a card taken twice would upset both counts)."""
    open_database(postgres_url)
    state = SharedState()
    keys = tuple(f"n{i}" for i in range(6))
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def worker() -> None:
        draw = Draw(keys, frozenset(range(6)), random.Random())
        for _ in range(30):
            new = state.advance("strict-random:d", draw)
            with lock:
                results.append(new)

    errors = on_connections(6, worker)
    try:
        assert errors == []
        drawn = collections.Counter(r["drawn"] for r in results)
        assert drawn == {i: 30 for i in range(6)}
        assert all(r["drawn"] not in r["deck"] for r in results)
        assert collections.Counter(len(r["deck"]) for r in results) == {
            size: 30 for size in range(6)
        }
    finally:
        close_database()


class _Reversing(random.Random):
    """A "shuffle" that is the same every time, so Python and SQL deal the same fresh deck."""

    def shuffle(self, x: Any) -> None:  # type: ignore[override]
        x.reverse()


STORED: list[Any] = [
    None, 0, 1, 2, 7, -1, -5, True, "x", 2.5, [1], {"a": 1},
    {"keys": ["n0", "n1", "n2", "n3"], "deck": [3, 1]},
    {"keys": ["n0", "n1", "n2", "n3"], "deck": [3, 1, 9, -1, "2", 2.0, True, 0]},
    {"keys": ["n0", "n1", "n2", "n3"], "deck": []},
    {"keys": ["n0", "n1", "n2", "n3"], "deck": "no"},
    {"keys": ["x", "y"], "deck": [0, 1]},
    {"keys": ["n0", "n1", "n2", "n3"], "deck": [2], "drawn": 1},
]  # fmt: skip
GROUPS = [(), (0,), (1, 3), (0, 1, 2, 3), (2,)]


@pytest.mark.parametrize("stored", STORED)
def test_sql_advances_match_their_python_steps(postgres_url: str, stored: Any) -> None:
    """Each SQL statement in SharedState is the twin of an ``apply`` in store/advance.py:
    same stored value, same step, same new value."""
    open_database(postgres_url)
    state = SharedState()
    keys = ("n0", "n1", "n2", "n3")
    try:
        for ready in GROUPS:
            for busy in GROUPS:
                turn = Turn(4, ready, tuple(i for i in busy if i not in ready))
                state.set("t", stored)
                assert state.advance("t", turn) == turn.apply(stored), (ready, busy)
            draw = Draw(keys, frozenset(ready), _Reversing())
            state.set("d", stored)
            assert state.advance("d", draw) == draw.apply(stored), ready
        # First use: the row does not exist yet.
        assert state.advance("new-t", Turn(3, (1, 2), ())) == 2
        assert state.advance("new-d", Draw(keys, frozenset({2}), _Reversing()))["drawn"] == 2
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


def test_concurrent_leases_never_exceed_the_limit(postgres_url: str) -> None:
    """Six threads (six connections, as instances would be) take and give back leases on
    one connection limited to 3: never more than 3 held at once, and every thread gets its
    turns (a lost race for a slot is retried, not refused while another slot is free)."""
    open_database(postgres_url)
    held = [0]
    peak = [0]
    got = collections.Counter[int]()
    lock = threading.Lock()

    def worker() -> None:
        n = threading.get_ident()
        leases = SharedLeases(instance_id=f"i{n}")
        for _ in range(40):
            lease = leases.try_acquire("conn", 3)
            if lease is None:
                continue
            with lock:
                held[0] += 1
                peak[0] = max(peak[0], held[0])
                got[n] += 1
            time.sleep(0.001)
            with lock:
                held[0] -= 1
            leases.release(lease)

    errors = on_connections(6, worker)
    try:
        assert errors == []
        assert peak[0] <= 3
        assert len(got) == 6 and all(got.values())
        assert SharedLeases().held("conn") == 0
    finally:
        close_database()


def test_a_lowered_limit_counts_leases_already_held(postgres_url: str) -> None:
    open_database(postgres_url)
    try:
        leases = SharedLeases(instance_id="a")
        taken = [leases.try_acquire("conn", 3) for _ in range(3)]
        assert all(taken) and len(set(taken)) == 3
        assert leases.try_acquire("conn", 3) is None
        # The limit drops to 1 while three calls are in flight (on slots 0 to 2).
        leases.release(taken[0])  # slot 0 is free again, but two calls still run
        assert leases.try_acquire("conn", 1) is None
        leases.release(taken[1])
        leases.release(taken[2])
        assert leases.try_acquire("conn", 1) is not None
        # A huge limit costs no more than the leases held: only slots 0..held are looked at.
        many = [leases.try_acquire("wide", 10**9) for _ in range(20)]
        assert len({lease for lease in many if lease}) == 20
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
