"""BridgeControl on a temp hosts file, a temp trust store and a real SQLite store: what the
API and the offline CLI both rely on (the end-to-end tests drive it through llmtap up)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from router.bridge.ca_control import trust_config
from router.bridge.control import BridgeControl
from router.catalog import Catalog
from router.errors import BadRequest, Forbidden
from router.settings import build
from router.store import agents as store_agents
from router.store import config as store_config
from router.store.records import ProviderConnection
from tests.router.bridge.fakeos import run_as_nobody, world_readable_dir
from tests.router.bridge.tempcontrol import temp_control

USER = b"127.0.0.1 localhost\n10.1.1.1 mine # keep"


@pytest.fixture
def control(tmp_path: Path) -> Iterator[BridgeControl]:
    catalog = Catalog()
    catalog.set_connections(
        [ProviderConnection(id="c1", provider="openai", name="oa", url="http://x/v1")]
    )
    catalog.set_aliases({"fast": "oa/gpt-4o-mini"})
    with temp_control(tmp_path, USER, catalog) as control:
        yield control


def test_dns_round_trip_and_flags(control: BridgeControl) -> None:
    out = asyncio.run(control.set_dns("open-code", True))
    assert out["dns_enabled"] is True and len(out["hostsLinesAdded"]) == 4
    assert "listener is not running" in out["warning"]
    assert store_agents.get_agent_state("open-code").dns_enabled
    asyncio.run(control.set_dns("open-code", False))
    assert control.hosts.path.read_bytes() == USER
    assert not store_agents.get_agent_state("open-code").dns_enabled


def test_stop_removes_lines_but_keeps_what_the_user_enabled(control: BridgeControl) -> None:
    asyncio.run(control.set_dns("claude-code", True))
    asyncio.run(control.stop_server())
    assert control.hosts.path.read_bytes() == USER
    assert store_agents.get_agent_state("claude-code").dns_enabled
    checks = control.diagnose(server_running=True)["checks"]
    claude = next(c for c in checks if c.get("agent") == "claude-code")
    assert claude["status"] == "fail" and claude["fix"] == "run: llmtap bridge start"


def test_mapping_targets_must_resolve(control: BridgeControl) -> None:
    assert control.target_problem("oa/gpt-4o") is None
    assert control.target_problem("openai/gpt-4o") is None  # by kind
    assert control.target_problem("fast") is None  # alias
    problem = control.target_problem("gpt-4o")
    assert problem is not None and "providers: oa" in problem
    with pytest.raises(BadRequest) as err:
        control.put_mappings("codex", [("*", "fast", "turbo")])
    assert [d.field for d in err.value.details] == ["mappings.0.effort"]
    rows = control.put_mappings("codex", [("*", "fast", "none")])
    assert rows[0]["effort"] == "none"
    assert store_agents.find_mapping("codex", "o3") is not None
    assert store_agents.find_mapping("claude-code", "o3") is None


def test_upstream_ca_env_wins_over_the_stored_value(
    control: BridgeControl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pem = control.certs.ca().cert_pem
    stored, env_file = tmp_path / "stored.pem", tmp_path / "env.pem"
    stored.write_text(pem)
    env_file.write_text(pem)
    out = control.certs.set_upstream_ca(str(stored))
    assert out["overriddenBy"] is None and store_config.get_settings()["upstream_ca"]
    monkeypatch.setenv("LLMTAP_UPSTREAM_CA", str(env_file))
    control.settings.upstream_ca = env_file
    out = control.certs.set_upstream_ca(str(stored))
    assert out["overriddenBy"] == "env" and out["path"] == str(env_file)
    assert out["valid"] is True


def test_trust_config_from_settings(tmp_path: Path) -> None:
    settings = build(cli={"ca_anchors_dir": tmp_path, "ca_bundle": tmp_path / "b.crt"}, env={})
    cfg = trust_config(settings)
    assert cfg.platform == "linux" and [a.directory for a in cfg.anchors] == [tmp_path]
    assert list(cfg.bundles) == [tmp_path / "b.crt"]


def test_enable_without_privilege_names_the_sudo_command(control: BridgeControl) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to uid nobody")
    with world_readable_dir() as root:
        hosts = root / "hosts"
        hosts.write_bytes(USER)
        hosts.chmod(0o644)
        data = root / "data"
        data.mkdir()
        data.chmod(0o777)
        control.hosts.path = hosts
        control.hosts.data_dir = data

        def enable() -> str:
            try:
                control.hosts.add(["chatgpt.com"], command="llmtap agents enable codex")
            except Forbidden as exc:
                return exc.message
            return "no error"

        assert run_as_nobody(enable).endswith("run: sudo llmtap agents enable codex")
        assert hosts.read_bytes() == USER
