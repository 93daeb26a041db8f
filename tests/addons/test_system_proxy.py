"""System-proxy capture through the running process, against recording fakes of the OS tools
(LLMTAP_TOOLS_PATH points the command runner at them alone: nothing real is touched)."""

from __future__ import annotations

import copy
import json
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.addons.proc import Llmtap, llmtap_argv, start_llmtap
from tests.router.bridge.fakeos import FakeOS
from tests.router.bridge.test_sysproxy import GNOME

MODES = "/api/tools/traffic-inspector/capture-modes"
G = "org.gnome.system.proxy"


def fake_gnome(tmp_path: Path) -> FakeOS:
    fake = FakeOS(tmp_path / "os", ("gsettings",))
    fake.state = {"gsettings": copy.deepcopy(GNOME)}
    return fake


def start(tmp_path: Path, fake: FakeOS) -> Llmtap:
    return start_llmtap(tmp_path / "data", env={"LLMTAP_TOOLS_PATH": str(fake.bin)})


def apply(app: Llmtap, minutes: int = 30) -> dict:
    resp = app.api(
        "POST", f"{MODES}/system-proxy", json={"action": "apply", "guardMinutes": minutes}
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def assert_pointed_at(fake: FakeOS, port: int) -> None:
    state = fake.state["gsettings"]
    assert state[G]["mode"] == "'manual'"
    assert state[f"{G}.http"] == {"host": "'127.0.0.1'", "port": str(port)}
    assert state[f"{G}.https"] == {"host": "'127.0.0.1'", "port": str(port)}


def test_apply_then_revert_restores_exactly(tmp_path: Path) -> None:
    fake = fake_gnome(tmp_path)
    app = start(tmp_path, fake)
    try:
        state = apply(app)
        assert state["systemProxy"]["active"] is True
        assert state["systemProxy"]["guardUntil"]
        assert state["httpProxy"]["active"] is True, "apply starts the listener it points at"
        assert_pointed_at(fake, app.proxy_port)
        journal = json.loads((app.data_dir / "journal.json").read_text())
        assert journal["system_proxy"]["previous"]["gnome"] == GNOME

        resp = app.api("POST", f"{MODES}/system-proxy", json={"action": "revert"})
        assert resp.status_code == 200 and resp.json()["systemProxy"]["active"] is False
        assert fake.state["gsettings"] == GNOME
        # Every call went through the fake tool with an argument list.
        assert all(call[0] == "gsettings" for call in fake.calls())
    finally:
        assert app.stop() == 0, app.log()


def test_clean_shutdown_reverts(tmp_path: Path) -> None:
    fake = fake_gnome(tmp_path)
    app = start(tmp_path, fake)
    apply(app)
    assert app.stop(signal.SIGINT) == 0, app.log()
    assert fake.state["gsettings"] == GNOME


def test_crash_then_repair_restores(tmp_path: Path) -> None:
    fake = fake_gnome(tmp_path)
    app = start(tmp_path, fake)
    apply(app)
    app.stop(signal.SIGKILL)  # a crash: nothing is reverted by the process itself
    assert_pointed_at(fake, app.proxy_port)
    out = subprocess.run(
        llmtap_argv(
            "repair",
            "--json",
            "--data-dir",
            str(app.data_dir),
            "--hosts-file",
            str(tmp_path / "hosts"),
        ),
        env=app.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["systemProxyReverted"] is True
    assert fake.state["gsettings"] == GNOME


def test_expired_guard_is_enforced_at_next_start(tmp_path: Path) -> None:
    fake = fake_gnome(tmp_path)
    app = start(tmp_path, fake)
    apply(app)
    app.stop(signal.SIGKILL)
    journal_path = app.data_dir / "journal.json"
    journal = json.loads(journal_path.read_text())
    past = datetime.now(UTC) - timedelta(minutes=1)
    journal["system_proxy"]["guard_until"] = past.isoformat()
    journal_path.write_text(json.dumps(journal))

    again = start(tmp_path, fake)
    try:
        assert fake.state["gsettings"] == GNOME
        state = again.api("GET", MODES).json()
        assert state["systemProxy"]["active"] is False
    finally:
        assert again.stop() == 0
