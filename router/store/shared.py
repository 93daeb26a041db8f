"""State shared by the instances of a team gateway on one PostgreSQL database.

* :class:`ChangeFeed`: a configuration change made through any instance reaches every other
  one. The writer bumps a counter row and sends ``NOTIFY llmtap_config`` in one transaction;
  each instance LISTENs on its own connection and, between notifications, polls the counter
  (so a lost notification or a dropped listen connection costs at most one poll interval).
* :class:`SharedState`: strategy state (round-robin positions, strict-random decks) advanced
  atomically in the database, so N instances share one rotation as one instance would.
* :class:`SharedLeases`: ``maxConcurrent`` per connection across instances, as leases that
  their instance renews while it lives (router/routing/guard.py's ``LeaseShare``).
* :class:`SharedBreakers`: breakers and 429 cooldowns (router/routing/breaker.py's
  ``BreakerShare``). Transitions are written at once and announced (``NOTIFY llmtap_state``);
  each instance keeps a copy refreshed by its feed thread, so a request reads no database.

On SQLite there is one instance per database: the feed stays silent and the state lives in
memory (store/state.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from router.store.advance import Advance, Turn
from router.store.db import database, engine, execute
from router.store.records import RemoteBreaker

log = logging.getLogger(__name__)

CHANNEL = "llmtap_config"
STATE_CHANNEL = "llmtap_state"
POLL_S = 0.5  # the fallback: a change is seen within this even without NOTIFY

# This process, in notifications, so an instance does not reload for its own change.
INSTANCE_ID = uuid.uuid4().hex


def announce_change(instance_id: str = INSTANCE_ID) -> int | None:
    """Tell the other instances that configuration changed (after the change committed).
    Returns the new change counter, or None on SQLite (nobody else to tell)."""
    if engine() != "postgres":
        return None
    with database.atomic():
        row = execute(
            database, "UPDATE shared_epoch SET n = n + 1 WHERE name = 'config' RETURNING n"
        ).fetchone()
        # Delivered at commit, to every listening session, in commit order.
        execute(database, "SELECT pg_notify(?, ?)", (CHANNEL, instance_id))
    return int(row[0]) if row else None


def current_change() -> int:
    row = execute(database, "SELECT n FROM shared_epoch WHERE name = 'config'").fetchone()
    return int(row[0]) if row else 0


class ChangeFeed:
    """Calls ``on_change`` (from its own thread) when another instance changed the
    configuration. Uses a dedicated psycopg connection: LISTEN needs a session of its own."""

    def __init__(
        self,
        url: str,
        on_change: Callable[[], object],
        *,
        poll_s: float = POLL_S,
        instance_id: str = INSTANCE_ID,
        seen: int | None = None,
        refreshers: list[Callable[[Any], object]] | None = None,
    ) -> None:
        """``seen``: the change counter read before this instance loaded its configuration
        (any later change triggers a reload); None: the counter when the feed starts."""
        self._url = url
        self._on_change = on_change
        self._poll_s = poll_s
        self._instance_id = instance_id
        self._stop = threading.Event()
        self._seen = seen
        # Called with the feed's connection on every wake (a notification or the poll).
        self._refreshers = list(refreshers or [])
        # Counters this instance set itself: no reload for those. The lock makes "bump and
        # remember" one step as far as the listener's "read and compare" is concerned.
        self._own: set[int] = set()
        self._lock = threading.Lock()
        self.changes = 0  # how many times on_change ran (for tests and health)
        self._thread = threading.Thread(target=self._run, name="llmtap-change-feed", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def announce(self) -> int | None:
        """Announce a change made through this instance (see :func:`announce_change`)."""
        with self._lock:
            counter = announce_change(self._instance_id)
            if counter is not None:
                self._own.add(counter)
            return counter

    def _fire(self) -> None:
        self.changes += 1
        try:
            self._on_change()
        except Exception:
            log.exception("applying a configuration change from another instance failed")

    def _run(self) -> None:
        import psycopg
        from playhouse.db_url import parse

        params = {k: v for k, v in parse(self._url).items() if k in _LIBPQ_PARAMS}
        params["dbname"] = params.pop("database")
        while not self._stop.is_set():
            try:
                with psycopg.connect(autocommit=True, **params) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    conn.execute(f"LISTEN {STATE_CHANNEL}")
                    self._listen(conn)
            except Exception as exc:  # server restart, network: listen again shortly
                log.warning("change feed: %r; reconnecting", exc)
                self._stop.wait(1.0)

    def _check(self, conn: Any) -> bool:
        """Did someone else change the configuration since we last looked?"""
        with self._lock:
            counter = _counter(conn)
            seen, self._seen = self._seen, counter
            if seen is None or counter == seen:
                return False
            changes = set(range(seen + 1, counter + 1))
            others = changes - self._own
            self._own -= changes
            return bool(others)

    def _listen(self, conn: Any) -> None:
        while not self._stop.is_set():
            if self._check(conn):
                self._fire()
            for refresh in self._refreshers:
                try:
                    refresh(conn)
                except Exception:
                    log.exception("refreshing shared state failed")
            # Wait for a notification (or the poll interval); the counter then says whether
            # it was someone else's change.
            for _note in conn.notifies(timeout=self._poll_s, stop_after=1):
                pass


_LIBPQ_PARAMS = frozenset(
    {"database", "user", "password", "host", "port", "sslmode", "sslrootcert", "sslcert",
     "sslkey", "connect_timeout", "application_name", "options", "target_session_attrs"}
)  # fmt: skip


def _counter(conn: Any) -> int:
    row = conn.execute("SELECT n FROM shared_epoch WHERE name = 'config'").fetchone()
    return int(row[0]) if row else 0


# Both advances are one INSERT ... ON CONFLICT DO UPDATE ... RETURNING: PostgreSQL's atomic
# upsert, an UPDATE ... RETURNING that also creates the row on first use. The SET expression
# is evaluated against the row version it has locked, so concurrent advances queue on the
# row and each sees the one before it: no read-modify-write across round trips, no turn
# taken twice. Each mirrors the Python ``apply`` of store/advance.py line by line (a test
# runs both on the same inputs).

_POSITION = "((router_state.value::bigint % ?) + ?) % ?"  # Python's non-negative modulo
_TURN_SQL = f"""
INSERT INTO router_state (key, value) VALUES (?, ?)
ON CONFLICT (key) DO UPDATE SET value = (
    SELECT ((r.i + 1) % ?)::text
    FROM (
        SELECT (s.start + k) % ? AS i, k
        FROM generate_series(0, ? - 1) AS k,
             (SELECT CASE WHEN router_state.value ~ '^-{{0,1}}[0-9]{{1,18}}$'
                          THEN {_POSITION} ELSE 0 END AS start) AS s
    ) AS r
    ORDER BY CASE WHEN r.i = ANY(?::int[]) THEN 0 WHEN r.i = ANY(?::int[]) THEN 1 ELSE 2 END,
             r.k
    LIMIT 1
)
RETURNING value
"""

# The stored deck, kept only when it was dealt for this node list, as int[] (cards that are
# not a node index are dropped, as in Python).
_OLD_DECK = """
ARRAY(
    SELECT e::text::int
    FROM jsonb_array_elements(
        CASE WHEN jsonb_typeof(router_state.value::jsonb) = 'object'
                  AND router_state.value::jsonb -> 'keys' = ?::jsonb
                  AND jsonb_typeof(router_state.value::jsonb -> 'deck') = 'array'
             THEN router_state.value::jsonb -> 'deck' ELSE '[]'::jsonb END
    ) WITH ORDINALITY AS j(e, o)
    WHERE jsonb_typeof(e) = 'number' AND e::text ~ '^[0-9]{1,9}$' AND e::text::int < ?
    ORDER BY o
)"""
_DRAW_SQL = f"""
INSERT INTO router_state (key, value) VALUES (?, ?)
ON CONFLICT (key) DO UPDATE SET value = (
    SELECT jsonb_build_object(
        'keys', ?::jsonb,
        'deck', COALESCE(
            (SELECT jsonb_agg(c ORDER BY o) FROM unnest(d.cards) WITH ORDINALITY AS u(c, o)
             WHERE o IS DISTINCT FROM d.pos),
            '[]'::jsonb),
        'drawn', d.cards[d.pos]
    )::text
    FROM (
        SELECT x.cards,
               (SELECT o FROM unnest(x.cards) WITH ORDINALITY AS u(c, o)
                WHERE c = ANY(?::int[]) ORDER BY o LIMIT 1) AS pos
        FROM (
            SELECT CASE WHEN cardinality(?::int[]) = 0 OR old.cards && ?::int[]
                        THEN old.cards ELSE ?::int[] END AS cards
            FROM (SELECT {_OLD_DECK} AS cards) AS old
        ) AS x
    ) AS d
)
RETURNING value
"""


class SharedState:
    """A ``StateStore`` (router/routing/strategies.py) in the database: every read and every
    advance goes to PostgreSQL, each advance one atomic statement (see ``_TURN_SQL``), so
    instances never take the same turn twice."""

    def get(self, key: str) -> Any:
        row = execute(database, "SELECT value FROM router_state WHERE key = ?", (key,)).fetchone()
        return None if row is None or row[0] is None else json.loads(row[0])

    def set(self, key: str, value: Any) -> None:
        execute(
            database,
            "INSERT INTO router_state (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    def advance(self, key: str, step: Advance) -> Any:
        """One round trip: the row is created with ``step.apply(None)`` on first use, else
        advanced in the database by the SQL twin of ``step.apply``."""
        first = json.dumps(step.apply(None))
        if isinstance(step, Turn):
            n = step.n
            sql = _TURN_SQL
            params: tuple[object, ...] = (
                key, first, n, n, n, n, n, n, list(step.ready), list(step.busy),
            )  # fmt: skip
        else:
            keys, group = json.dumps(list(step.keys)), sorted(step.group)
            sql = _DRAW_SQL
            params = (
                key, first, keys, group, group, group, step.fresh(), keys, len(step.keys),
            )  # fmt: skip
        row = execute(database, sql, params).fetchone()
        return json.loads(row[0])

    def flush(self, timeout: float | None = 5.0) -> bool:
        return True

    def close(self) -> None:
        return None


def _notify_state() -> None:
    execute(database, "SELECT pg_notify(?, ?)", (STATE_CHANNEL, INSTANCE_ID))


class SharedBreakers:
    """``BreakerShare`` on PostgreSQL: writes go to the database on the calling (event loop)
    thread, only at transitions; reads come from :meth:`refresh`'s copy."""

    def __init__(self) -> None:
        self._views: dict[str, RemoteBreaker] = {}

    def view(self, conn_id: str) -> RemoteBreaker | None:
        return self._views.get(conn_id)

    def refresh(self, conn: Any) -> None:
        """Re-read every shared breaker and cooldown (the feed thread, its own connection);
        the new copy replaces the old in one assignment."""
        rows = conn.execute(
            "SELECT connection_id, open_until, cooldown_s, probe_until FROM breaker_state"
        ).fetchall()
        limits = conn.execute("SELECT connection_id, model, until_ts FROM rate_limit").fetchall()
        views: dict[str, dict[str, Any]] = {}
        for cid, open_until, cooldown, probe_until in rows:
            views[cid] = {
                "open_until": float(open_until),
                "cooldown_s": float(cooldown),
                "probe_until": float(probe_until),
            }
        for cid, model, until in limits:
            view = views.setdefault(cid, {})
            if model:
                view.setdefault("model_limited_until", {})[model] = float(until)
            else:
                view["rate_limited_until"] = float(until)
        self._views = {cid: RemoteBreaker(**v) for cid, v in views.items()}

    def _set_view(self, conn_id: str, **changes: Any) -> None:
        current = self._views.get(conn_id) or RemoteBreaker()
        views = dict(self._views)
        views[conn_id] = dataclasses.replace(current, **changes)
        self._views = views

    def opened(self, conn_id: str, until: float, cooldown_s: float) -> None:
        with database.atomic():
            execute(
                database,
                "INSERT INTO breaker_state (connection_id, open_until, cooldown_s, probe_until) "
                "VALUES (?, ?, ?, 0) ON CONFLICT (connection_id) DO UPDATE SET "
                "open_until = excluded.open_until, cooldown_s = excluded.cooldown_s, "
                "probe_until = 0",
                (conn_id, until, cooldown_s),
            )
            _notify_state()
        self._set_view(conn_id, open_until=until, cooldown_s=cooldown_s, probe_until=0.0)

    def closed(self, conn_id: str | None) -> None:
        where, params = ("WHERE connection_id = ?", (conn_id,)) if conn_id else ("", ())
        with database.atomic():
            execute(database, f"DELETE FROM breaker_state {where}", params)
            model_filter = " AND model = ''" if conn_id else ""
            execute(database, f"DELETE FROM rate_limit {where}{model_filter}", params)
            _notify_state()
        if conn_id is None:
            self._views = {}
        else:
            self._set_view(conn_id, open_until=0.0, probe_until=0.0, rate_limited_until=0.0)

    def rate_limited(self, conn_id: str, model: str | None, until: float) -> None:
        with database.atomic():
            execute(
                database,
                "INSERT INTO rate_limit (connection_id, model, until_ts) VALUES (?, ?, ?) "
                "ON CONFLICT (connection_id, model) DO UPDATE SET "
                "until_ts = GREATEST(rate_limit.until_ts, excluded.until_ts)",
                (conn_id, model or "", until),
            )
            _notify_state()

    def claim_probe(self, conn_id: str, until: float) -> bool:
        """Take the one probe after the cooldown, if nobody holds it (atomic)."""
        now = time.time()
        with database.atomic():
            won = execute(
                database,
                "UPDATE breaker_state SET probe_until = ? WHERE connection_id = ? "
                "AND open_until > 0 AND open_until <= ? AND probe_until <= ? "
                "RETURNING connection_id",
                (until, conn_id, now, now),
            ).fetchone()
            if won is not None:
                _notify_state()
            elif (
                execute(
                    database, "SELECT 1 FROM breaker_state WHERE connection_id = ?", (conn_id,)
                ).fetchone()
                is None
            ):
                # Another instance's success closed it meanwhile: nothing to claim, go ahead.
                return True
        if won is not None:
            self._set_view(conn_id, probe_until=until)
        return won is not None

    def release_probe(self, conn_id: str) -> None:
        with database.atomic():
            execute(
                database,
                "UPDATE breaker_state SET probe_until = 0 WHERE connection_id = ?",
                (conn_id,),
            )
            _notify_state()
        self._set_view(conn_id, probe_until=0.0)


LEASE_TTL_S = 5.0  # a dead instance's leases are free again after this
LEASE_RACE_RETRIES = 8  # slots lost in a row to other instances before calling it full


# A lease takes one of ``limit`` numbered slots of its connection (row id "<connection>#<n>"),
# in one statement. With ``n`` leases live one of slots 0..n is free, so only those are looked
# at (the first free one the scan meets; which one does not matter). The slot's primary key
# makes two instances racing for it insert once (the loser's ON CONFLICT finds a live lease
# and writes nothing); a slot whose lease expired (a dead instance's) is taken over in place.
# The count of live leases also guards what the slots alone would miss: a limit lowered
# while calls were in flight on higher slots.
_ACQUIRE_SQL = """
INSERT INTO connection_lease AS l (id, connection_id, instance_id, expires_at)
SELECT ? || '#' || s, ?, ?, ?
FROM (SELECT COUNT(*) AS n FROM connection_lease AS c
      WHERE c.connection_id = ? AND c.expires_at >= ?) AS live,
     generate_series(0, LEAST(? - 1, live.n)) AS s
WHERE live.n < ?
  AND NOT EXISTS (SELECT 1 FROM connection_lease AS c
                  WHERE c.id = ? || '#' || s AND c.expires_at >= ?)
LIMIT 1
ON CONFLICT (id) DO UPDATE SET instance_id = excluded.instance_id,
                               expires_at = excluded.expires_at
    WHERE l.expires_at < ?
RETURNING id
"""


class SharedLeases:
    """``LeaseShare`` on PostgreSQL. A lease row names its instance and expires
    ``LEASE_TTL_S`` after its last renewal; the feed thread renews this instance's leases on
    every wake (at least every ``POLL_S``), so only a dead instance's leases run out."""

    def __init__(self, instance_id: str = INSTANCE_ID, ttl_s: float = LEASE_TTL_S) -> None:
        self.instance_id = instance_id
        self.ttl_s = ttl_s

    def try_acquire(self, connection_id: str, limit: int) -> str | None:
        """One statement when a slot is free (the usual case); a refusal costs one more, to
        tell "full" from "lost a race for a slot while another was free" (then try again)."""
        for _attempt in range(LEASE_RACE_RETRIES):
            now = time.time()
            row = execute(
                database,
                _ACQUIRE_SQL,
                (connection_id, connection_id, self.instance_id, now + self.ttl_s,
                 connection_id, now, limit, limit, connection_id, now, now),
            ).fetchone()  # fmt: skip
            if row is not None:
                return str(row[0])
            if self.held(connection_id) >= limit:
                return None
        return None

    def release(self, lease_id: str) -> None:
        execute(
            database,
            "DELETE FROM connection_lease WHERE id = ? AND instance_id = ?",
            (lease_id, self.instance_id),
        )

    def renew(self, conn: Any) -> None:
        """Push this instance's leases' expiry forward, and drop leases long dead (the feed
        thread, its connection)."""
        now = time.time()
        conn.execute(
            "UPDATE connection_lease SET expires_at = %s WHERE instance_id = %s",
            (now + self.ttl_s, self.instance_id),
        )
        conn.execute("DELETE FROM connection_lease WHERE expires_at < %s", (now - self.ttl_s,))

    def held(self, connection_id: str) -> int:
        row = execute(
            database,
            "SELECT COUNT(*) FROM connection_lease WHERE connection_id = ? AND expires_at >= ?",
            (connection_id, time.time()),
        ).fetchone()
        return int(row[0])
