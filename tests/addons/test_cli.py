"""``llmtap providers|keys|combos|token|status`` as real subprocesses: against the database when
no server runs, and against a running server's API when server.json points at one."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from router.store import keys as store_keys
from tests.fakes.upstream import FakeUpstream
from tests.web.harness import start_server

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-cli-provider-0123456789abcdef"


async def llmtap(
    data_dir: Path, *argv: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "addons.main", *argv, "--data-dir", str(data_dir),
        cwd=ROOT,
        env={**os.environ, "HOME": str(data_dir.parent), "LLMTAP_LOG_LEVEL": "WARNING", **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def ok_json(data_dir: Path, *argv: str, env: dict[str, str] | None = None) -> Any:
    code, out, err = await llmtap(data_dir, *argv, "--json", env=env)
    assert code == 0, err
    return json.loads(out)


async def scenario(data_dir: Path, upstream_url: str) -> None:
    """The same commands work, and say the same things, whichever backend answers."""
    conn = await ok_json(
        data_dir, "providers", "add", "openai", upstream_url + "/v1", "--key-env", "CLI_KEY",
        "--name", "up", "--models", "gpt-4o-mini,gpt-4o", env={"CLI_KEY": SECRET},
    )  # fmt: skip
    assert conn["name"] == "up" and conn["models"] == ["gpt-4o-mini", "gpt-4o"]
    code, out, err = await llmtap(data_dir, "providers", "list")
    assert code == 0 and "up" in out and "openai" in out
    assert SECRET not in out + err and SECRET[-4:] in out  # the preview only

    tested = await ok_json(data_dir, "providers", "test", conn["id"])
    assert tested["ok"] is True

    combo = await ok_json(
        data_dir, "combos", "add", "duo", "--strategy", "weighted",
        "--node", "up:gpt-4o-mini:3", "--node", f"{conn['id']}:gpt-4o",
    )  # fmt: skip
    assert [(n["connectionId"], n["model"], n["weight"]) for n in combo["nodes"]] == [
        (conn["id"], "gpt-4o-mini", 3.0),
        (conn["id"], "gpt-4o", 1.0),
    ]
    code, out, err = await llmtap(
        data_dir, "combos", "add", "rejected-combo", "--strategy", "fastest", "--node", "up:m"
    )
    assert code == 2 and "strategy" in err
    code, out, _ = await llmtap(data_dir, "combos", "list")
    assert "duo" in out and "weighted" in out and "rejected-combo" not in out

    code, out, _ = await llmtap(data_dir, "keys", "create", "laptop")
    assert code == 0
    full = out.split()[0]
    assert full.startswith(store_keys.PREFIX)
    keys = await ok_json(data_dir, "keys", "list")
    assert [k["label"] for k in keys] == ["laptop"] and all(full not in json.dumps(k) for k in keys)
    revoked = await ok_json(data_dir, "keys", "revoke", keys[0]["id"])
    assert revoked["isActive"] is False

    code, _, err = await llmtap(data_dir, "combos", "rm", "nope")
    assert code == 2 and "not found" in err
    assert (await ok_json(data_dir, "combos", "rm", combo["id"]))["deleted"] is True
    assert (await ok_json(data_dir, "providers", "rm", conn["id"]))["deleted"] is True
    assert await ok_json(data_dir, "providers", "list") == []


async def test_cli_against_the_database(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    await scenario(data_dir, fake_upstream.url)
    status = await ok_json(data_dir, "status")
    assert status["running"] is False and status["providers"] == 0 and status["keys"] == 1
    # What the CLI wrote is what a server started on that data dir sees.
    server, webapp = await start_server(data_dir, fake_upstream, lanes=[])
    try:
        keys = (await server.api("GET", "/api/keys")).json()["keys"]
        assert [(k["label"], k["isActive"]) for k in keys] == [("laptop", False)]
    finally:
        await webapp.done()
        await server.runtime.close()


async def test_cli_against_a_running_server(fake_upstream: FakeUpstream, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server, webapp = await start_server(data_dir, fake_upstream, lanes=[])
    try:
        port = int(server.url.rsplit(":", 1)[1])
        (data_dir / "server.json").write_text(
            json.dumps({"host": "127.0.0.1", "port": port, "pid": os.getpid()})
        )
        await scenario(data_dir, fake_upstream.url)
        # The server's own catalog saw the writes (it reloads after each API write) ...
        assert (await server.api("GET", "/api/keys")).json()["keys"][0]["label"] == "laptop"
        status = await ok_json(data_dir, "status")
        assert status["running"] is True and status["keys"] == 1
        assert {"name": "api", "host": "127.0.0.1", "port": port, "active": True} in status[
            "listeners"
        ]
        code, out, _ = await llmtap(data_dir, "token")
        assert code == 0 and out.strip() == server.runtime.management_token()
    finally:
        await webapp.done()
        await server.runtime.close()


async def test_stale_server_json_falls_back_to_the_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # A pid that cannot be alive: the CLI must not try to reach the (dead) server.
    (data_dir / "server.json").write_text(
        json.dumps({"host": "127.0.0.1", "port": 1, "pid": 2**22 + 12345})
    )
    status = await ok_json(data_dir, "status")
    assert status["running"] is False
    code, _, err = await llmtap(data_dir, "token")
    assert code == 1 and "llmtap up" in err


async def test_provider_urls_must_be_forgiving_in_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out, err = await llmtap(
        data, "providers", "add", "anthropic", "https://api.anthropic.com"
    )
    assert code == 0, err
    assert "-> https://api.anthropic.com/v1" in out
    assert "normalised from https://api.anthropic.com" in out
    conns = await ok_json(data, "providers", "list")
    assert [c["url"] for c in conns] == ["https://api.anthropic.com/v1"]


async def test_responses_capability_in_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "data"
    conn = await ok_json(data, "providers", "add", "openai", "https://api.openai.com")
    assert conn["supportsResponses"] is True  # OpenAI's own API serves /responses
    changed = await ok_json(data, "providers", "set", conn["id"], "--no-responses")
    assert changed["supportsResponses"] is False
    local = await ok_json(
        data, "providers", "add", "openai", "http://127.0.0.1:9/v1", "--name", "vllm",
        "--responses",
    )  # fmt: skip
    assert local["supportsResponses"] is True
