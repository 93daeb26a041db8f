from datetime import UTC, datetime, timedelta

import pytest

from router.errors import BadRequest, NotFound
from router.store import calllogs
from router.store.records import CallLog

from .conftest import DbTarget

NOW = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)


def _log(i: int, **kw: object) -> CallLog:
    data: dict[str, object] = {
        "id": f"log-{i}",
        "timestamp": NOW - timedelta(minutes=i),
        "path": "/v1/chat/completions",
        "requestedModel": "fast",
        "provider": "openai",
        "model": "gpt-4o",
        "status": 200,
        "tokensIn": 100,
        "tokensOut": 10,
        "costUsd": 0.01,
        **kw,
    }
    return CallLog.model_validate(data)


def test_insert_list_get(db: DbTarget) -> None:
    full = _log(
        0,
        attempts=[{"provider": "a", "status": 500}],
        droppedFields=["logprobs"],
        cacheReadTokens=5,
        reasoningTokens=3,
        latencyMs=12.5,
        streamed=True,
        usageEstimated=True,
        agent="codex",
    )
    assert calllogs.insert_many([_log(2), full, _log(1)]) == 3
    assert [log.id for log in calllogs.list_logs()] == ["log-0", "log-1", "log-2"]
    assert [log.id for log in calllogs.list_logs(limit=1, offset=1)] == ["log-1"]
    assert calllogs.get_log("log-0") == full
    assert calllogs.count() == 3
    with pytest.raises(NotFound):
        calllogs.get_log("nope")
    with pytest.raises(BadRequest) as info:
        calllogs.list_logs(limit=0, offset=-1)
    assert {d.field for d in info.value.details} == {"limit", "offset"}


def test_insert_replaces_same_id(db: DbTarget) -> None:
    calllogs.insert_many([_log(0, status=0)])
    calllogs.insert_many([_log(0, status=502, error="boom")])
    assert calllogs.count() == 1
    assert calllogs.get_log("log-0").error == "boom"


def test_retention(db: DbTarget) -> None:
    calllogs.insert_many([_log(0), _log(60 * 24 * 40)])
    assert calllogs.delete_older_than(NOW - timedelta(days=30)) == 1
    assert [log.id for log in calllogs.list_logs()] == ["log-0"]


def test_analytics(db: DbTarget) -> None:
    day = 60 * 24
    calllogs.insert_many(
        [
            _log(1),
            _log(2, model="claude-sonnet-4", provider="anthropic", costUsd=0.5, tokensIn=7),
            _log(3, status=502, model=None, provider=None, costUsd=0.0),
            _log(day + 1),  # yesterday
            _log(day * 10),  # outside a week
        ]
    )
    week = calllogs.analytics("week", now=NOW)
    assert week.since == NOW - timedelta(days=7)
    assert week.totals.requests == 4
    assert week.totals.errors == 1
    assert week.totals.tokens_in == 100 + 7 + 100 + 100
    assert week.totals.cost_usd == pytest.approx(0.52)
    assert week.by_model["gpt-4o"].requests == 2
    assert week.by_model["fast"].requests == 1  # unresolved: the requested name
    assert week.by_provider["anthropic"].cost_usd == pytest.approx(0.5)
    assert week.by_provider["unknown"].errors == 1
    gpt_days = [(p.day, p.requests) for p in week.model_series if p.key == "gpt-4o"]
    assert gpt_days == [("2025-06-09", 1), ("2025-06-10", 1)]
    assert calllogs.analytics("day", now=NOW).totals.requests == 3
    assert calllogs.analytics("month", now=NOW).totals.requests == 5
    with pytest.raises(BadRequest):
        calllogs.analytics("year")


def test_analytics_per_agent_and_combo_by_the_hour(db: DbTarget) -> None:
    calllogs.insert_many(
        [
            _log(1, agent="codex", combo="fast"),
            _log(2, agent="codex"),
            _log(90, combo="fast", costUsd=0.25),  # an hour and a half ago: the 10:00 bucket
        ]
    )
    day = calllogs.analytics("day", now=NOW, bucket="hour")
    assert day.by_agent["codex"].requests == 2
    assert day.by_agent[calllogs.DIRECT].requests == 1  # no agent: a client of /v1
    assert set(day.by_combo) == {"fast"} and day.by_combo["fast"].requests == 2
    assert [(p.bucket, p.key, p.requests) for p in day.combo_series] == [
        ("2025-06-10T10:00Z", "fast", 1),
        ("2025-06-10T11:00Z", "fast", 1),
    ]
    assert {(p.bucket, p.key) for p in day.agent_series} == {
        ("2025-06-10T10:00Z", calllogs.DIRECT),
        ("2025-06-10T11:00Z", "codex"),
    }
    assert all(p.day == "2025-06-10" for p in day.model_series)
    by_day = calllogs.analytics("week", now=NOW)
    assert [(p.bucket, p.requests) for p in by_day.combo_series] == [("2025-06-10", 2)]
    with pytest.raises(BadRequest):
        calllogs.analytics("day", bucket="minute")


def test_list_logs_sorted_by_a_column_newest_first_among_equals(db: DbTarget) -> None:
    calllogs.insert_many(
        [_log(1, costUsd=0.5), _log(2, costUsd=0.01), _log(3, costUsd=0.5), _log(4, status=502)]
    )
    assert [log.id for log in calllogs.list_logs(sort="-costUsd")] == [
        "log-1", "log-3", "log-2", "log-4",
    ]  # fmt: skip
    assert [log.id for log in calllogs.list_logs(sort="status", limit=1)] == ["log-1"]
    assert [log.id for log in calllogs.list_logs(sort="-status", limit=1)] == ["log-4"]
    with pytest.raises(BadRequest):
        calllogs.list_logs(sort="id; DROP TABLE")


def test_a_row_is_masked_as_it_is_built_and_a_clean_one_kept_as_it_is() -> None:
    """Every free-text field and the attempt list are masked when the row is built (one scan
    first: a clean row is taken as it is, a dirty one masked field by field)."""
    key = "sk-" + "k" * 40
    row = CallLog(
        id="r1",
        timestamp=datetime.now(UTC),
        path=f"/v1/x?key={key}",
        requested_model=f"oa/echo-{key}",
        model=f"m-{key}",
        attempts=[{"provider": "oa", "error": f"Bearer {key}", "status": 401}],
        status=401,
        error=f"bad key {key}",
    )
    assert key not in row.model_dump_json()
    assert row.requested_model.startswith("oa/") and row.attempts[0]["status"] == 401
    clean = CallLog(
        id="r2",
        timestamp=datetime.now(UTC),
        path="/v1/chat/completions",
        requested_model="oa/gpt-4o-mini",
        attempts=[{"provider": "oa", "status": 200}],
        status=200,
    )
    assert (clean.path, clean.requested_model) == ("/v1/chat/completions", "oa/gpt-4o-mini")
    assert clean.attempts == [{"provider": "oa", "status": 200}]


def test_a_row_holds_what_each_columns_db_value_makes_of_the_log() -> None:
    """The writer's rows skip peewee's per-column conversion where the CallLog already holds
    the column's type: the row must be exactly what converting every column would give."""
    from router.store.tables import CallLogRow

    full = _log(
        0,
        attempts=[{"provider": "a", "status": 500, "error": "caf\u00e9 \u2603"}],
        droppedFields=["logprobs"],
        costUsd=None,
        streamed=True,
        error="boom",
    )
    fields = CallLogRow._meta.sorted_fields
    assert calllogs._row(full) == [f.db_value(getattr(full, f.name)) for f in fields]


def test_a_batch_run_in_slices_is_still_one_transaction(db: DbTarget) -> None:
    """SQLite batches run a few rows at a time (the writer steps aside between slices), but a
    batch stays one transaction: a row that fails in the last slice writes none of it."""
    from router.store.db import YIELD_EVERY

    many = [_log(i) for i in range(3 * YIELD_EVERY + 1)]
    assert calllogs.insert_many(many) == len(many)
    assert calllogs.count() == len(many)
    assert [log.id for log in calllogs.list_logs(limit=500)] == [log.id for log in many]
    calllogs.delete_older_than(NOW + timedelta(days=1))
    broken = CallLog.model_construct(**{**_log(999).__dict__, "path": None})  # NOT NULL
    with pytest.raises(Exception, match=r"(?i)null"):
        calllogs.insert_many([_log(i + 100) for i in range(2 * YIELD_EVERY)] + [broken])
    assert calllogs.count() == 0
