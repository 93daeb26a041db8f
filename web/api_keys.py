"""Management API for router API keys: /api/keys (stored hashed; the full key is shown once)."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from router.store import keys as store
from router.store.records import ApiKey
from web.context import reply
from web.errors import read_json
from web.openapi import Deleted, doc
from web.validation import parse_body

routes = web.RouteTableDef()


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=200)


class KeyPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    label: str | None = Field(default=None, min_length=1, max_length=200)
    is_active: bool | None = Field(default=None, alias="isActive")


class KeyList(BaseModel):
    keys: list[ApiKey]


class KeyCreated(ApiKey):
    """The record plus ``key``: the only time the full key leaves the server."""

    key: str


@routes.get("/api/keys")
@doc("list router API keys", response=KeyList)
async def list_keys(request: web.Request) -> web.Response:
    return reply(KeyList(keys=store.list_all()))


@routes.post("/api/keys")
@doc("create a router API key (the full key is in this reply only)", request=KeyCreate,
     response=KeyCreated, status=201)  # fmt: skip
async def create_key(request: web.Request) -> web.Response:
    data = parse_body(KeyCreate, await read_json(request))
    record, full_key = store.create(data.label)
    return reply(KeyCreated(**record.model_dump(), key=full_key), status=201)


@routes.get("/api/keys/{id}")
@doc("one router API key", response=ApiKey)
async def get_key(request: web.Request) -> web.Response:
    return reply(store.get(request.match_info["id"]))


@routes.patch("/api/keys/{id}")
@doc("rename or (de)activate a router API key", request=KeyPatch, response=ApiKey)
async def patch_key(request: web.Request) -> web.Response:
    patch = parse_body(KeyPatch, await read_json(request))
    key = store.update(request.match_info["id"], label=patch.label, is_active=patch.is_active)
    return reply(key)


@routes.delete("/api/keys/{id}")
@doc("revoke (delete) a router API key", response=Deleted)
async def delete_key(request: web.Request) -> web.Response:
    store.delete(request.match_info["id"])
    return reply(Deleted())
