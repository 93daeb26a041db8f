"""repair: hosts lines and system proxy undone from disk state alone, idempotently."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from router.bridge.hostsfile import HostsFile
from router.bridge.journal import Journal
from router.bridge.repair import repair
from router.bridge.sysproxy import SystemProxy
from tests.router.bridge.fakeos import FakeOS

G = "org.gnome.system.proxy"
GNOME = {
    G: {"mode": "'none'", "ignore-hosts": "['localhost']"},
    f"{G}.http": {"host": "''", "port": "0"},
    f"{G}.https": {"host": "''", "port": "0"},
}


def test_repair_after_a_crash(tmp_path: Path) -> None:
    fake = FakeOS(tmp_path / "os", ("gsettings", "resolvectl"))
    fake.state = {"gsettings": GNOME}
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    data = tmp_path / "data"
    HostsFile(hosts, data, Journal(data), fake.runner()).add(["api.anthropic.com"])
    SystemProxy(fake.runner(), Journal(data), "linux").apply(
        8080, 30, now=datetime(2025, 1, 1, tzinfo=UTC)
    )

    # a new process, knowing only the data dir
    hf = HostsFile(hosts, data, Journal(data), fake.runner())
    sp = SystemProxy(fake.runner(), Journal(data), "linux")
    report = repair(hf, sp)
    assert report == {
        "hostsLinesRemoved": [
            "127.0.0.1 api.anthropic.com # llmtap",
            "::1 api.anthropic.com # llmtap",
        ],
        "resolverFlushed": True,
        "systemProxyReverted": True,
        "errors": [],
    }
    assert hosts.read_text() == "127.0.0.1 localhost\n"
    assert fake.state["gsettings"] == GNOME

    assert repair(hf, sp) == {
        "hostsLinesRemoved": [],
        "resolverFlushed": False,
        "systemProxyReverted": False,
        "errors": [],
    }


def test_repair_reports_errors_and_still_does_the_rest(tmp_path: Path) -> None:
    fake = FakeOS(tmp_path / "os", ("gsettings",))
    fake.state = {"gsettings": GNOME}
    data = tmp_path / "data"
    sp = SystemProxy(fake.runner(), Journal(data), "linux")
    sp.apply(8080, 30)
    (tmp_path / "file").write_text("")
    hf = HostsFile(tmp_path / "file" / "hosts", data, Journal(data))
    report = repair(hf, sp)
    assert report["systemProxyReverted"] and fake.state["gsettings"] == GNOME
    assert len(report["errors"]) == 1 and "Not a directory" in report["errors"][0]
