"""Helpers for the management API tests: counting collections, reading error details."""

from __future__ import annotations

from typing import Any

import httpx

from tests.web.harness import Server


async def items(server: Server, path: str, key: str) -> list[dict[str, Any]]:
    resp = await server.api("GET", path)
    assert resp.status_code == 200, resp.text
    result: list[dict[str, Any]] = resp.json()[key]
    return result


def fields(resp: httpx.Response) -> set[str]:
    """The ``field`` of every validation detail in an error envelope."""
    error = resp.json()["error"]
    return {d["field"] for d in error.get("details") or []}


def assert_error(resp: httpx.Response, status: int, *field_names: str) -> None:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body["error"]) >= {"message", "type", "requestId"}
    missing = set(field_names) - fields(resp)
    assert not missing, f"no details for {missing}: {resp.text}"
