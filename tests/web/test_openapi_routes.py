"""The OpenAPI document covers every route the app registers: an operation per route, a request
body for each method that takes one, the handler's own success status, and the statuses the
edge middlewares answer (tests/web/test_api_smoke.py checks the statuses seen in a live run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from addons.compose import build_runtime
from router.settings import build
from web.app import create_app
from web.openapi import METHODS, build_spec, declared
from web.security import INGEST_PATH, is_protected, is_router_path


async def test_every_route_has_its_operation_body_and_statuses(tmp_path: Path) -> None:
    rt = await build_runtime(build(cli={"data_dir": tmp_path / "data", "port": 0}, env={}))
    try:
        app = create_app(rt)
        spec = build_spec(app)
    finally:
        await rt.close()
    problems: list[str] = []
    count = 0
    for route in app.router.routes():
        if route.method not in METHODS or route.resource is None:
            continue
        count += 1
        path, method = route.resource.canonical, route.method
        where = f"{method} {path}"
        op: dict[str, Any] | None = spec["paths"].get(path, {}).get(method.lower())
        declared_doc = declared(route.handler)
        if op is None or declared_doc is None:
            problems.append(f"{where}: no declared operation")
            continue
        codes = set(op["responses"])
        if str(declared_doc.status) not in codes:
            problems.append(f"{where}: success status {declared_doc.status} not documented")
        has_body = "requestBody" in op
        if method in ("POST", "PUT", "PATCH") and not has_body and not declared_doc.no_body:
            problems.append(f"{where}: no requestBody (declare no_body=True if it takes none)")
        if has_body and not {"400", "413"} <= codes:
            problems.append(f"{where}: a body can be invalid (400) or too large (413)")
        if "{" in path and "404" not in codes:
            problems.append(f"{where}: a path parameter can name nothing (404)")
        checked = (is_protected(path) and path != INGEST_PATH) or is_router_path(path)
        if checked and not {"401", "403"} <= codes:
            problems.append(f"{where}: the token/key (401) and Host/Origin (403) checks")
        if declared_doc.status not in (101, 204):
            content = op["responses"][str(declared_doc.status)].get("content", {})
            json_schema = content.get("application/json", {}).get("schema")
            plain_json = declared_doc.media == "application/json" and not declared_doc.stream
            if plain_json and not json_schema:
                problems.append(f"{where}: JSON success response without a schema")
    assert count > 80
    assert problems == [], "\n".join(problems)
