"""Management API for usage and cost: call logs, analytics, the pricing table."""

from __future__ import annotations

import asyncio
import math
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from router.errors import BadRequest, FieldError
from router.store import calllogs
from router.store import config as store_config
from router.store.records import CallLog, ModelName, ModelPrice, UsageAnalytics
from web.context import reply, runtime
from web.errors import read_json
from web.openapi import Deleted, Param, doc
from web.validation import parse_body, query_params

routes = web.RouteTableDef()


class CallLogPage(BaseModel):
    logs: list[CallLog]
    total: int
    limit: int
    offset: int


PAGING = (
    Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}),
    # SQLite's OFFSET is a signed 64-bit integer; no table here comes near 2**31 rows.
    Param("offset", {"type": "integer", "minimum": 0, "maximum": 2**31, "default": 0}),
)
SORT = Param("sort", {"type": "string", "enum": list(calllogs.SORT_KEYS), "default": "-timestamp"})


async def _flush_call_logs(request: web.Request) -> None:
    """Read your writes: a call whose client saw it finish is in what the usage API answers.
    The writer holds rows up to 50 ms for company; a flush commits them at once (off the loop
    thread: it waits on a condition)."""
    await asyncio.to_thread(runtime(request).writer.flush, 10.0)


@routes.get("/api/usage/call-logs")
@doc("router calls, newest first (or by ?sort=column, -column)", response=CallLogPage,
     query=(*PAGING, SORT))  # fmt: skip
async def list_call_logs(request: web.Request) -> web.Response:
    query = query_params(request, (*PAGING, SORT))
    limit, offset = query["limit"], query["offset"]
    await _flush_call_logs(request)
    logs = calllogs.list_logs(limit, offset, query.get("sort") or "-timestamp")
    return reply(CallLogPage(logs=logs, total=calllogs.count(), limit=limit, offset=offset))


@routes.get("/api/usage/call-logs/{id}")
@doc("one router call", response=CallLog)
async def get_call_log(request: web.Request) -> web.Response:
    await _flush_call_logs(request)
    return reply(calllogs.get_log(request.match_info["id"]))


PERIOD = Param("period", {"type": "string", "enum": ["day", "week", "month"], "default": "week"})
BUCKET = Param("bucket", {"type": "string", "enum": ["day", "hour"], "default": "day"})


@routes.get("/api/usage/analytics")
@doc("totals and per model/provider/agent/combo series by day (or hour)",
     response=UsageAnalytics, query=(PERIOD, BUCKET))  # fmt: skip
async def analytics(request: web.Request) -> web.Response:
    query = query_params(request, (PERIOD, BUCKET))
    await _flush_call_logs(request)
    return reply(calllogs.analytics(query["period"], bucket=query["bucket"]))


# --------------------------------------------------------------------------- pricing


Source = Literal["seed", "override"]


class PriceRow(ModelPrice):
    source: Source


class PriceTable(BaseModel):
    prices: list[PriceRow]


class PriceUpsert(BaseModel):
    """USD per 1M tokens; ``reasoning`` unset means reasoning is billed as output."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model: ModelName
    # USD per million tokens; no model costs a million dollars per million tokens.
    input: float = Field(ge=0, le=1_000_000, allow_inf_nan=False)
    output: float = Field(ge=0, le=1_000_000, allow_inf_nan=False)
    cached: float | None = Field(default=None, ge=0, le=1_000_000, allow_inf_nan=False)
    cache_creation: float | None = Field(default=None, ge=0, le=1_000_000, allow_inf_nan=False)
    reasoning: float | None = Field(default=None, ge=0, le=1_000_000, allow_inf_nan=False)
    context_window: int | None = Field(default=None, ge=1, le=1 << 40, alias="contextWindow")
    max_output: int | None = Field(default=None, ge=1, le=1 << 40, alias="maxOutput")


def price_table(request: web.Request) -> PriceTable:
    overrides = {p.model.lower() for p in store_config.list_prices()}
    rows = [
        PriceRow(**p.model_dump(), source="override" if p.model.lower() in overrides else "seed")
        for p in runtime(request).pricing.all()
    ]
    return PriceTable(prices=rows)


def _refresh(request: web.Request) -> None:
    runtime(request).set_pricing_overrides(store_config.list_prices())


@routes.get("/api/pricing")
@doc("the effective pricing table (seed + overrides), USD per 1M tokens", response=PriceTable)
async def get_pricing(request: web.Request) -> web.Response:
    return reply(price_table(request))


@routes.post("/api/pricing")
@doc("add or replace a price override", request=PriceUpsert, response=ModelPrice)
async def set_price(request: web.Request) -> web.Response:
    data = parse_body(PriceUpsert, await read_json(request))
    # JSON allows NaN/Infinity literals (Python's parser accepts them); a price must be finite.
    bad = [
        FieldError(name, "must be a finite number")
        for name, value in data.model_dump().items()
        if isinstance(value, float) and not math.isfinite(value)
    ]
    if bad:
        raise BadRequest("invalid price", bad)
    saved = store_config.upsert_price(ModelPrice(**data.model_dump()))
    _refresh(request)
    return reply(saved)


@routes.delete("/api/pricing/{model:.+}")
@doc("remove a price override (the seed price, if any, applies again)", response=Deleted)
async def delete_price(request: web.Request) -> web.Response:
    store_config.delete_price(request.match_info["model"])
    _refresh(request)
    return reply(Deleted())
