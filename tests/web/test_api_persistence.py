"""Router state survives a restart; secrets never leave the server (responses, call logs, logs)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from addons.compose import build_runtime
from addons.webapp import WebApp
from router.settings import load as load_settings
from router.store import calllogs
from tests.fakes.upstream import FakeUpstream, Reply
from tests.web.harness import LANES, Server, start_server
from web.app import create_app

GETS = [
    "/api/providers", "/api/keys", "/api/combos", "/api/combos/metrics", "/api/models",
    "/api/fallback/chains", "/api/resilience", "/api/usage/call-logs", "/api/usage/analytics",
    "/api/pricing", "/api/monitoring/health", "/api/settings", "/api/openapi/spec", "/v1/models",
]  # fmt: skip


async def write_state(server: Server) -> dict[str, Any]:
    oa, an = server.connection_ids["oa"], server.connection_ids["an"]
    combo = {
        "name": "duo",
        "strategy": "weighted",
        "nodes": [
            {"connectionId": oa, "model": "gpt-4o-mini", "weight": 3},
            {"connectionId": an, "model": "claude-sonnet-4", "weight": 1},
        ],
    }
    writes = [
        ("POST", "/api/combos", combo),
        ("POST", "/api/keys", {"label": "persist"}),
        ("POST", "/api/models/alias", {"alias": "pair", "target": "duo"}),
        ("POST", "/api/fallback/chains", {"model": "gpt-4o", "chain": [{"provider": "an"}]}),
        ("PATCH", "/api/settings", {"bufferSize": 77, "requireApiKey": True}),
        ("PATCH", "/api/resilience", {"failureThreshold": 3}),
        ("POST", "/api/pricing", {"model": "my-model", "input": 1.5, "output": 2.5}),
    ]
    out: dict[str, Any] = {}
    for method, path, body in writes:
        resp = await server.api(method, path, json=body)
        assert resp.status_code in (200, 201), resp.text
        out[path] = resp.json()
    return out


async def snapshot(server: Server) -> dict[str, Any]:
    out = {}
    for path in ("/api/providers", "/api/combos", "/api/models", "/api/fallback/chains",
                 "/api/settings", "/api/resilience", "/api/pricing"):  # fmt: skip
        out[path] = (await server.api("GET", path)).json()
    out["/api/keys"] = [
        {k: v for k, v in key.items()}
        for key in (await server.api("GET", "/api/keys")).json()["keys"]
    ]
    return out


async def test_state_survives_restart(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server, webapp = await start_server(data_dir, fake_upstream)
    try:
        written = await write_state(server)
        before = await snapshot(server)
    finally:
        await webapp.done()
        await server.runtime.close()

    # A new process: settings built the way `llmtap up` builds them (stored layer included).
    runtime = await build_runtime(load_settings({"data_dir": data_dir, "port": 0}, env={}))
    app = WebApp(create_app(runtime), "127.0.0.1", 0)
    await app.running()
    again = Server(
        f"http://127.0.0.1:{app.bound_port}", fake_upstream, runtime, server.connection_ids
    )
    try:
        assert await snapshot(again) == before
        assert before["/api/settings"]["bufferSize"] == 77
        assert before["/api/resilience"]["failureThreshold"] == 3
        assert runtime.guard.breakers.settings.failure_threshold == 3
        assert any(
            p["model"] == "my-model" and p["source"] == "override"
            for p in before["/api/pricing"]["prices"]
        )
        # The key created before the restart still opens /v1 (requireApiKey survived too).
        key = written["/api/keys"]["key"]
        body = {"model": "pair", "messages": [{"role": "user", "content": "hi"}]}
        assert (await again.api("POST", "/v1/chat/completions", json=body)).status_code == 401
        fake_upstream.script(Reply.text("still here"))
        resp = await again.api(
            "POST", "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        )
        assert resp.status_code == 200, resp.text
    finally:
        await app.done()
        await runtime.close()


async def test_secrets_never_leave(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    # Everything of ours at DEBUG; third-party loggers at INFO (at DEBUG, httpcore logs this
    # test's own request headers, peewee's SQL parameters are hidden: see the test below).
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="llmtap")
    secrets = [f"sk-test-{lane}-0123456789abcdef" for lane in LANES]
    created = await server.api("POST", "/api/keys", json={"label": "s"})
    router_key = created.json()["key"]
    secrets.append(router_key)
    await write_state_minimal(server)

    server.upstream.script(
        Reply.text("a"), Reply.text("b"), Reply.error(500, "boom"), Reply.text("c")
    )
    for lane in LANES:
        body = {"model": server.model(lane), "messages": [{"role": "user", "content": "hi"}]}
        await server.api(
            "POST",
            "/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {router_key}"},
        )
    assert server.runtime.writer.flush(timeout=10)
    await server.api("POST", f"/api/providers/{server.connection_ids['oa']}/test", json={})

    bodies = [created.text.replace(router_key, "<shown-once>")]
    for path in GETS:
        bodies.append((await server.api("GET", path)).text)
    for conn in server.connection_ids.values():
        bodies.append((await server.api("GET", f"/api/providers/{conn}")).text)
    rows = [log.model_dump_json() for log in calllogs.list_logs(1000)]
    assert rows, "the calls were logged"
    text = "\n".join(bodies + rows + [caplog.text])
    for secret in secrets:
        assert secret not in text
        assert secret[-12:] not in text  # not even a long tail of it


async def write_state_minimal(server: Server) -> None:
    body = {
        "name": "s",
        "strategy": "priority",
        "nodes": [{"connectionId": server.connection_ids["oa"], "model": "m"}],
    }
    assert (await server.api("POST", "/api/combos", json=body)).status_code == 201


async def test_store_debug_log_does_not_leak_provider_keys(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="peewee")
    new_key = "sk-test-oa-rotated-0123456789abcdef"
    resp = await server.api(
        "PATCH", f"/api/providers/{server.connection_ids['oa']}", json={"apiKey": new_key}
    )
    assert resp.status_code == 200
    assert new_key not in caplog.text
