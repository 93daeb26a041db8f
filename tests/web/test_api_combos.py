"""/api/combos (+ metrics, dry-run plans), /api/models + aliases, /api/fallback/chains."""

from __future__ import annotations

from typing import Any

import pytest

from router.store.records import STRATEGIES
from tests.fakes.upstream import Reply
from tests.web.harness import Server
from tests.web.manage import assert_error, items


def combo(server: Server, name: str = "fast", **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "strategy": "priority",
        "nodes": [
            {"connectionId": server.connection_ids["oa"], "model": "gpt-4o-mini", "priority": 0},
            {
                "connectionId": server.connection_ids["an"],
                "model": "claude-sonnet-4",
                "priority": 1,
            },
        ],
    }
    return body | kw


async def create(server: Server, body: dict[str, Any]) -> dict[str, Any]:
    resp = await server.api("POST", "/api/combos", json=body)
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


# --------------------------------------------------------------------------- combos CRUD


async def test_combo_crud_and_routing(server: Server) -> None:
    created = await create(server, combo(server))
    assert created["name"] == "fast" and len(created["nodes"]) == 2
    assert (await server.api("GET", f"/api/combos/{created['id']}")).json() == created
    assert [c["id"] for c in await items(server, "/api/combos", "combos")] == [created["id"]]

    # The combo name is a model clients can ask for, right after the write (catalog reloaded).
    server.upstream.script(Reply.text("via combo"))
    body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
    resp = await server.api("POST", "/v1/chat/completions", json=body)
    assert resp.status_code == 200 and resp.headers["x-omniroute-provider"] == "oa"
    ids = [m["id"] for m in (await server.api("GET", "/v1/models")).json()["data"]]
    assert "fast" in ids

    patched = await server.api(
        "PATCH", f"/api/combos/{created['id']}", json={"strategy": "round-robin", "name": "quick"}
    )
    assert patched.status_code == 200
    assert (patched.json()["strategy"], patched.json()["name"]) == ("round-robin", "quick")

    assert (await server.api("DELETE", f"/api/combos/{created['id']}")).json() == {"deleted": True}
    assert await items(server, "/api/combos", "combos") == []
    ids = [m["id"] for m in (await server.api("GET", "/v1/models")).json()["data"]]
    assert "quick" not in ids and "fast" not in ids


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_unknown_combo_is_404(server: Server, method: str) -> None:
    kw = {"json": {"strategy": "random"}} if method == "PATCH" else {}
    assert_error(await server.api(method, "/api/combos/nope", **kw), 404)


def _bad_bodies(server: Server) -> list[tuple[dict[str, Any], str]]:
    good = combo(server)
    node = good["nodes"][0]
    return [
        ({**good, "strategy": "fastest"}, "strategy"),
        ({**good, "strategy": 3}, "strategy"),
        ({**good, "name": ["x"]}, "name"),
        ({**good, "bogus": True}, "bogus"),
        ({**good, "nodes": [{**node, "weight": -1}]}, "nodes.0.weight"),
        ({**good, "nodes": [{**node, "weight": "heavy"}]}, "nodes.0.weight"),
        ({**good, "nodes": [{**node, "colour": "red"}]}, "nodes.0.colour"),
        ({**good, "nodes": [{**node, "connectionId": "dangling"}]}, "nodes.0.connectionId"),
        ({**good, "nodes": [{"connectionId": node["connectionId"]}]}, "nodes.0.model"),
        ({**good, "nodes": "all"}, "nodes"),
    ]


async def test_bad_combo_create_writes_nothing(server: Server) -> None:
    for body, field in _bad_bodies(server):
        assert_error(await server.api("POST", "/api/combos", json=body), 400, field)
    assert await items(server, "/api/combos", "combos") == []


async def test_bad_combo_patch_changes_nothing(server: Server) -> None:
    created = await create(server, combo(server))
    for body, field in _bad_bodies(server):
        if field == "name":
            continue
        body.pop("name")
        resp = await server.api("PATCH", f"/api/combos/{created['id']}", json=body)
        assert_error(resp, 400, field)
    assert (await server.api("GET", f"/api/combos/{created['id']}")).json() == created


async def test_duplicate_name_is_409(server: Server) -> None:
    first = await create(server, combo(server))
    other = await create(server, combo(server, "other"))
    assert_error(await server.api("POST", "/api/combos", json=combo(server)), 409)
    resp = await server.api("PATCH", f"/api/combos/{other['id']}", json={"name": "fast"})
    assert_error(resp, 409)
    names = sorted(c["name"] for c in await items(server, "/api/combos", "combos"))
    assert names == ["fast", "other"] and first["name"] == "fast"


async def test_nested_combos_cycle_rejected_and_in_use_delete_is_409(server: Server) -> None:
    inner = await create(server, combo(server, "inner"))
    outer = await create(
        server, {"name": "outer", "strategy": "priority", "nodes": [{"combo": "inner"}]}
    )
    cyc = await server.api(
        "PATCH", f"/api/combos/{inner['id']}", json={"nodes": [{"combo": "outer"}]}
    )
    assert_error(cyc, 400, "nodes")
    assert_error(await server.api("DELETE", f"/api/combos/{inner['id']}"), 409)
    assert len(await items(server, "/api/combos", "combos")) == 2
    assert outer["nodes"][0]["combo"] == "inner"


async def test_every_strategy_accepted(server: Server) -> None:
    for i, strategy in enumerate(STRATEGIES):
        await create(server, combo(server, f"c{i}", strategy=strategy))
    assert len(await items(server, "/api/combos", "combos")) == len(STRATEGIES)


# --------------------------------------------------------------------------- metrics, dry run


async def test_metrics_count_calls_per_node(server: Server) -> None:
    created = await create(server, combo(server))
    empty = (await server.api("GET", "/api/combos/metrics")).json()
    assert empty["combos"][0]["requests"] == 0 and empty["tracked"] is True

    server.upstream.script(Reply.text("one"), Reply.text("two"))
    body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(2):
        assert (await server.api("POST", "/v1/chat/completions", json=body)).status_code == 200
    data = (await server.api("GET", "/api/combos/metrics")).json()
    (entry,) = data["combos"]
    assert entry["id"] == created["id"] and entry["requests"] == 2 and entry["failures"] == 0
    first, second = entry["nodes"]
    assert first["connectionId"] == server.connection_ids["oa"] and first["requests"] == 2
    assert first["breaker"] == "closed" and first["lastUsed"] and first["avgLatencyMs"] > 0
    assert second["requests"] == 0 and second["lastUsed"] is None


async def test_dry_run_plan_orders_and_explains_skips(server: Server) -> None:
    await create(server, combo(server))
    plan = await server.api("POST", "/api/combos/test", json={"model": "fast"})
    assert plan.status_code == 200, plan.text
    data = plan.json()
    assert data["combo"] == "fast" and data["strategy"] == "priority"
    assert [s["connection"] for s in data["steps"]] == ["oa", "an"]
    assert [s["position"] for s in data["steps"]] == [1, 2]
    assert all(s["skipReason"] is None for s in data["steps"])

    # An open breaker: the node is reported as skipped with the reason.
    breakers = server.runtime.guard.breakers
    for _ in range(breakers.settings.failure_threshold):
        breakers.on_failure(server.connection_ids["oa"], True)
    # A switched-off connection: the resolver drops it; the plan says why.
    off = await server.api(
        "PATCH", f"/api/providers/{server.connection_ids['an']}", json={"isActive": False}
    )
    assert off.status_code == 200
    data = (await server.api("POST", "/api/combos/test", json={"model": "fast"})).json()
    reasons = {s["connection"]: s["reason"] for s in data["skipped"]}
    assert reasons == {"oa": "breaker_open", "an": "connection_inactive"}
    assert data["steps"] == []
    assert server.upstream.requests == [], "a dry run never calls upstream"


async def set_models(server: Server, lane: str, models: list[str]) -> None:
    resp = await server.api(
        "PATCH", f"/api/providers/{server.connection_ids[lane]}", json={"models": models}
    )
    assert resp.status_code == 200, resp.text


async def test_dry_run_unknown_model_and_bad_body(server: Server) -> None:
    for lane in ("oa", "an", "ge"):  # connections without a model list would take any name
        await set_models(server, lane, [f"{lane}-model"])
    assert_error(
        await server.api("POST", "/api/combos/test", json={"model": "nothing-like-it"}), 404
    )
    assert_error(await server.api("POST", "/api/combos/test", json={"model": 7}), 400, "model")
    assert_error(await server.api("POST", "/api/combos/test", json={"modle": "x"}), 400, "modle")


# --------------------------------------------------------------------------- models and aliases


async def test_aliases(server: Server) -> None:
    await create(server, combo(server))
    for alias, target in (("mini", "oa/gpt-4o-mini"), ("speedy", "fast")):
        resp = await server.api(
            "POST", "/api/models/alias", json={"alias": alias, "target": target}
        )
        assert resp.status_code == 200 and resp.json() == {"alias": alias, "target": target}
    models = (await server.api("GET", "/api/models")).json()
    assert {a["alias"]: a["target"] for a in models["aliases"]} == {
        "mini": "oa/gpt-4o-mini",
        "speedy": "fast",
    }
    ids = {m["id"] for m in models["models"]}
    assert {"mini", "speedy", "fast"} <= ids

    server.upstream.script(Reply.text("aliased"))
    body = {"model": "mini", "messages": [{"role": "user", "content": "hi"}]}
    resp = await server.api("POST", "/v1/chat/completions", json=body)
    assert resp.status_code == 200 and resp.headers["x-omniroute-provider"] == "oa"

    assert (await server.api("DELETE", "/api/models/alias/mini")).status_code == 200
    assert_error(await server.api("DELETE", "/api/models/alias/mini"), 404)
    assert [a["alias"] for a in (await server.api("GET", "/api/models")).json()["aliases"]] == [
        "speedy"
    ]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"alias": "x", "target": "nowhere/gpt-4o"}, 400, "target"),
        ({"alias": "x", "target": "no-such-combo"}, 400, "target"),
        ({"alias": "x", "target": 5}, 400, "target"),
        ({"alias": "x", "target": "oa/gpt-4o", "note": "hi"}, 400, "note"),
        ({"alias": "oa/thing", "target": "oa/gpt-4o"}, 400, "alias"),
        ({"target": "oa/gpt-4o"}, 400, "alias"),
        ({"alias": "fast", "target": "oa/gpt-4o"}, 409, None),
    ],
)
async def test_bad_alias_writes_nothing(
    server: Server, body: dict[str, Any], status: int, field: str | None
) -> None:
    await create(server, combo(server))
    resp = await server.api("POST", "/api/models/alias", json=body)
    assert_error(resp, status, *([field] if field else []))
    assert (await server.api("GET", "/api/models")).json()["aliases"] == []


# --------------------------------------------------------------------------- fallback chains


async def test_fallback_chains(server: Server) -> None:
    chain = {
        "model": "gpt-4o-mini",
        "chain": [
            {"provider": "an/claude-sonnet-4", "priority": 1, "enabled": True},
            {"provider": "ge", "priority": 0, "enabled": False},
        ],
    }
    resp = await server.api("POST", "/api/fallback/chains", json=chain)
    assert resp.status_code == 200, resp.text
    assert [link["provider"] for link in resp.json()["chain"]] == ["ge", "an/claude-sonnet-4"]
    assert [c["model"] for c in await items(server, "/api/fallback/chains", "chains")] == [
        "gpt-4o-mini"
    ]
    for lane in ("oa", "an", "ge"):
        await set_models(server, lane, ["gpt-4o-mini"] if lane == "oa" else [f"{lane}-model"])
    plan = (await server.api("POST", "/api/combos/test", json={"model": "gpt-4o-mini"})).json()
    assert [(s["connection"], s["via"]) for s in plan["steps"]] == [
        ("oa", "direct"),
        ("an", "fallback"),
    ]

    assert (
        await server.api("DELETE", "/api/fallback/chains", params={"model": "gpt-4o-mini"})
    ).status_code == 200
    assert await items(server, "/api/fallback/chains", "chains") == []
    assert_error(
        await server.api("DELETE", "/api/fallback/chains", params={"model": "gpt-4o-mini"}), 404
    )
    assert_error(await server.api("DELETE", "/api/fallback/chains"), 400, "model")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "m", "chain": [{"provider": "dangling"}]}, "chain.0.provider"),
        ({"model": "m", "chain": [{"provider": "oa", "priority": "high"}]}, "chain.0.priority"),
        ({"model": "m", "chain": [{"provider": "oa", "extra": 1}]}, "chain.0.extra"),
        ({"model": "m", "chain": []}, "chain"),
        ({"chain": [{"provider": "oa"}]}, "model"),
        ({"model": "m", "chain": {"provider": "oa"}}, "chain"),
    ],
)
async def test_bad_chain_writes_nothing(server: Server, body: dict[str, Any], field: str) -> None:
    assert_error(await server.api("POST", "/api/fallback/chains", json=body), 400, field)
    assert await items(server, "/api/fallback/chains", "chains") == []
