"""Call logs (one row per router call) and the usage analytics computed from them."""

from __future__ import annotations

import operator
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Literal, cast

import peewee
from peewee import fn

from router.errors import BadRequest, FieldError, NotFound
from router.store.db import database, upsert_rows, utcnow
from router.store.records import CallLog, UsageAnalytics, UsageBucket, UsagePoint
from router.store.tables import CallLogRow, JsonField, UtcDateTimeField

Period = Literal["day", "week", "month"]
PERIODS: dict[str, timedelta] = {
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
}
_FIELDS = CallLogRow._meta.sorted_fields
_COLUMNS = [f.column_name for f in _FIELDS]
# A validated CallLog already holds each column's value in the column's type, so a row is its
# attributes in column order (one C call) with only the JSON and timestamp columns converted by
# their field's db_value. Through peewee's db_value for every column, the writer thread held
# the GIL for ~1.5 ms per 56-row batch, and the request on the event loop at that moment
# waited: E1's p99 (bench/analysis.md).
_VALUES = operator.attrgetter(*(f.name for f in _FIELDS))
_CONVERTED = [
    (i, f.db_value) for i, f in enumerate(_FIELDS) if isinstance(f, JsonField | UtcDateTimeField)
]


def _record(row: CallLogRow) -> CallLog:
    data = {name: getattr(row, name) for name in CallLog.model_fields}
    return CallLog.model_validate(data)


def _row(log: CallLog) -> list[object]:
    row = list(_VALUES(log))
    for i, db_value in _CONVERTED:
        row[i] = db_value(row[i])
    return row


def insert_many(logs: Iterable[CallLog]) -> int:
    """Insert (or replace, by id) a batch in one transaction; returns the number written.
    Replacing by id makes a retried batch harmless: a row is never there twice."""
    latest = {log.id: log for log in logs}  # one row per id, the last winning
    with database.atomic():
        return upsert_rows(
            CallLogRow._meta.table_name, _COLUMNS, ["id"], map(_row, latest.values()), unique=True
        )


# The columns a call log can be sorted by (wire name -> column); "-" in front means descending.
SORTABLE: dict[str, Any] = {
    "timestamp": CallLogRow.timestamp,
    "model": CallLogRow.requested_model,
    "provider": CallLogRow.provider,
    "status": CallLogRow.status,
    "tokensIn": CallLogRow.tokens_in,
    "tokensOut": CallLogRow.tokens_out,
    "costUsd": CallLogRow.cost_usd,
    "latencyMs": CallLogRow.latency_ms,
}
SORT_KEYS = tuple(p + k for k in SORTABLE for p in ("", "-"))


def list_logs(limit: int = 50, offset: int = 0, sort: str = "-timestamp") -> list[CallLog]:
    """Newest first, or by ``sort`` (a key of SORTABLE, "-" for descending), newest first
    among equals so paging is stable."""
    errors = []
    if not 1 <= limit <= 1000:
        errors.append(FieldError("limit", "must be between 1 and 1000"))
    if offset < 0:
        errors.append(FieldError("offset", "must be >= 0"))
    if sort not in SORT_KEYS:
        errors.append(FieldError("sort", f"one of: {', '.join(SORT_KEYS)}"))
    if errors:
        raise BadRequest("invalid paging", errors)
    column = SORTABLE[sort.removeprefix("-")]
    first = column.desc() if sort.startswith("-") else column.asc()
    query = (
        CallLogRow.select()
        .order_by(first, CallLogRow.timestamp.desc(), CallLogRow.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [_record(r) for r in query]


def count() -> int:
    return int(CallLogRow.select().count())


def get_log(log_id: str) -> CallLog:
    row = CallLogRow.get_or_none(CallLogRow.id == log_id)
    if row is None:
        raise NotFound(f"call log '{log_id}' not found")
    return _record(row)


def delete_older_than(cutoff: datetime) -> int:
    """Retention: drop rows before ``cutoff``; returns how many went."""
    return int(CallLogRow.delete().where(CallLogRow.timestamp < cutoff).execute())


def _aggregates() -> list[Any]:
    return [
        fn.COUNT(CallLogRow.id).alias("requests"),
        # An in-band failure keeps the client's 200 but carries its error (CallLog.outcome).
        fn.SUM(
            peewee.Case(
                None, [((CallLogRow.status >= 400) | CallLogRow.error.is_null(False), 1)], 0
            )
        ).alias("errors"),
        fn.SUM(CallLogRow.tokens_in).alias("tokens_in"),
        fn.SUM(CallLogRow.tokens_out).alias("tokens_out"),
        fn.SUM(CallLogRow.cache_read_tokens).alias("cache_read_tokens"),
        fn.SUM(CallLogRow.cache_write_tokens).alias("cache_write_tokens"),
        fn.SUM(CallLogRow.reasoning_tokens).alias("reasoning_tokens"),
        fn.SUM(CallLogRow.cost_usd).alias("cost_usd"),  # SUM skips NULL: priced calls only
        fn.SUM(peewee.Case(None, [(CallLogRow.cost_usd.is_null(), 1)], 0)).alias("unpriced"),
    ]


def _dicts(query: Any) -> list[dict[str, Any]]:
    # peewee's stubs type ``.dicts()`` rows as model instances; they are plain dicts.
    return [cast(dict[str, Any], r) for r in query.dicts()]


def _bucket(row: dict[str, Any]) -> dict[str, Any]:
    names = ("requests", "errors", "tokens_in", "tokens_out", "cache_read_tokens",
             "cache_write_tokens", "reasoning_tokens", "unpriced")  # fmt: skip
    out: dict[str, Any] = {name: int(row.get(name) or 0) for name in names}
    out["cost_usd"] = float(row.get("cost_usd") or 0.0)
    return out


Bucket = Literal["day", "hour"]
# The length of the ISO timestamp prefix that names a bucket ("2026-11-29", "2026-11-29T08").
_BUCKET_CHARS: dict[str, int] = {"day": 10, "hour": 13}
# A call without an agent came straight to /v1 (a client of the router, not a captured agent).
DIRECT = "direct"


def analytics(
    period: str = "week", now: datetime | None = None, bucket: str = "day"
) -> UsageAnalytics:
    """Totals since ``now - period``, per model, provider, agent and combo, and each as a
    series of ``bucket``-long points (UTC days, or UTC hours for a one-day chart)."""
    errors = []
    if period not in PERIODS:
        errors.append(FieldError("period", f"one of: {', '.join(PERIODS)}"))
    if bucket not in _BUCKET_CHARS:
        errors.append(FieldError("bucket", f"one of: {', '.join(_BUCKET_CHARS)}"))
    if errors:
        raise BadRequest("invalid analytics query", errors)
    since = (now or utcnow()) - PERIODS[period]
    recent = CallLogRow.timestamp >= since
    # Rows that never resolved a model/provider (e.g. 404 model_not_found) still count.
    model_key = fn.COALESCE(CallLogRow.model, CallLogRow.requested_model)
    # Literals inline, not bound: PostgreSQL binds each parameter separately, so a GROUP BY
    # expression with its own "$3" would not match the selected one with "$1".
    provider_key = fn.COALESCE(CallLogRow.provider, peewee.SQL("'unknown'"))
    agent_key = fn.COALESCE(CallLogRow.agent, peewee.SQL(f"'{DIRECT}'"))
    combo_key = CallLogRow.combo
    one = peewee.SQL("1")
    day = fn.SUBSTR(CallLogRow.timestamp, one, peewee.SQL("10")).coerce(False)  # text
    width = peewee.SQL(str(_BUCKET_CHARS[bucket]))  # an int from the table: safe inline
    start = fn.SUBSTR(CallLogRow.timestamp, one, width).coerce(False)

    (totals,) = _dicts(CallLogRow.select(*_aggregates()).where(recent))

    def grouped(key: Any, where: Any = None) -> dict[str, UsageBucket]:
        query = (
            CallLogRow.select(key.alias("key"), *_aggregates())
            .where(recent if where is None else recent & where)
            .group_by(key)
            .order_by(key)
        )
        return {r["key"]: UsageBucket.model_validate(_bucket(r)) for r in _dicts(query)}

    def series(key: Any, where: Any = None) -> list[UsagePoint]:
        query = (
            CallLogRow.select(
                start.alias("start"), day.alias("day"), key.alias("key"), *_aggregates()
            )
            .where(recent if where is None else recent & where)
            .group_by(start, day, key)
            .order_by(start, key)
        )
        return [
            UsagePoint.model_validate(
                {
                    **_bucket(r),
                    "day": r["day"],
                    "bucket": _bucket_start(r["start"]),
                    "key": r["key"],
                }
            )
            for r in _dicts(query)
        ]

    in_combo = CallLogRow.combo.is_null(False)
    return UsageAnalytics(
        period=period,  # checked against PERIODS above
        since=since,
        totals=UsageBucket.model_validate(_bucket(totals)),
        by_model=grouped(model_key),
        by_provider=grouped(provider_key),
        by_agent=grouped(agent_key),
        by_combo=grouped(combo_key, in_combo),
        model_series=series(model_key),
        provider_series=series(provider_key),
        agent_series=series(agent_key),
        combo_series=series(combo_key, in_combo),
    )


def _bucket_start(prefix: str) -> str:
    """An ISO 8601 start of the bucket: the day as is, an hour as "YYYY-MM-DDTHH:00Z"."""
    return prefix if len(prefix) == 10 else f"{prefix[:10]}T{prefix[11:13]}:00Z"
