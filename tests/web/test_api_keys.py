"""/api/keys: router API keys, shown once, stored hashed, enforced by requireApiKey."""

from __future__ import annotations

import pytest

from router.store import keys as store_keys
from tests.fakes.upstream import Reply
from tests.web.harness import Server
from tests.web.manage import assert_error, items


async def test_create_shows_key_once_then_only_preview(server: Server) -> None:
    resp = await server.api("POST", "/api/keys", json={"label": "alice"})
    assert resp.status_code == 201, resp.text
    created = resp.json()
    full = created["key"]
    assert full.startswith(store_keys.PREFIX)
    assert created["label"] == "alice" and created["isActive"] is True
    assert created["keyPreview"].endswith(full[-4:])
    assert set(created) >= {"id", "label", "keyPreview", "isActive", "createdAt"}

    listed = await items(server, "/api/keys", "keys")
    assert [k["id"] for k in listed] == [created["id"]]
    one = (await server.api("GET", f"/api/keys/{created['id']}")).json()
    for body in (listed[0], one):
        assert "key" not in body and full not in str(body)
    # Stored hashed: the verifier accepts it, the raw key is nowhere in the database file.
    assert store_keys.verify(full) is not None
    assert full.encode() not in (server.runtime.settings.db_path).read_bytes()


async def test_patch_and_delete(server: Server) -> None:
    key = (await server.api("POST", "/api/keys", json={"label": "bob"})).json()
    resp = await server.api(
        "PATCH", f"/api/keys/{key['id']}", json={"isActive": False, "label": "bob2"}
    )
    assert resp.status_code == 200
    assert (resp.json()["isActive"], resp.json()["label"]) == (False, "bob2")
    assert store_keys.verify(key["key"]) is None  # inactive keys do not verify

    assert (await server.api("DELETE", f"/api/keys/{key['id']}")).json() == {"deleted": True}
    assert await items(server, "/api/keys", "keys") == []


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_unknown_key_is_404(server: Server, method: str) -> None:
    kw = {"json": {"label": "x"}} if method == "PATCH" else {}
    assert_error(await server.api(method, "/api/keys/nope", **kw), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "label"),
        ({"label": ""}, "label"),
        ({"label": 42}, "label"),
        ({"label": "ok", "admin": True}, "admin"),
    ],
)
async def test_bad_create_writes_nothing(
    server: Server, body: dict[str, object], field: str
) -> None:
    assert_error(await server.api("POST", "/api/keys", json=body), 400, field)
    assert await items(server, "/api/keys", "keys") == []


async def test_bad_patch_changes_nothing(server: Server) -> None:
    key = (await server.api("POST", "/api/keys", json={"label": "carol"})).json()
    for body, field in (({"isActive": "maybe"}, "isActive"), ({"label": "x", "extra": 1}, "extra")):
        assert_error(await server.api("PATCH", f"/api/keys/{key['id']}", json=body), 400, field)
    after = (await server.api("GET", f"/api/keys/{key['id']}")).json()
    assert (after["label"], after["isActive"]) == ("carol", True)


async def test_require_api_key_enforced_and_logged(server: Server) -> None:
    resp = await server.api("PATCH", "/api/settings", json={"requireApiKey": True})
    assert resp.status_code == 200 and resp.json()["requireApiKey"] is True
    body = {"model": server.model("oa"), "messages": [{"role": "user", "content": "hi"}]}

    denied = await server.api("POST", "/v1/chat/completions", json=body)
    assert denied.status_code == 401
    wrong = await server.api(
        "POST",
        "/v1/chat/completions",
        json=body,
        headers={"Authorization": "Bearer sk-llmtap-nope"},
    )
    assert wrong.status_code == 401

    key = (await server.api("POST", "/api/keys", json={"label": "ci"})).json()
    server.upstream.script(Reply.text("hello"))
    ok = await server.api(
        "POST", "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key['key']}"}
    )
    assert ok.status_code == 200, ok.text
    assert server.runtime.writer.flush(timeout=10)
    logs = (await server.api("GET", "/api/usage/call-logs")).json()["logs"]
    mine = [row for row in logs if row["id"] == ok.headers["x-omniroute-request-id"]]
    assert mine and mine[0]["apiKeyId"] == key["id"] and mine[0]["status"] == 200
    assert key["key"] not in str(logs)
