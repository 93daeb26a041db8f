"""System proxy adapters and manager against recording fakes of the OS tools."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from router.bridge.journal import Journal
from router.bridge.proxy_adapters import WININET_KEY
from router.bridge.runner import CommandError
from router.bridge.sysproxy import SystemProxy, SystemProxyUnavailable
from tests.router.bridge.fakeos import FakeOS

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
G = "org.gnome.system.proxy"
GNOME: dict[str, Any] = {
    G: {"mode": "'none'", "ignore-hosts": "['localhost', '127.0.0.0/8', '::1']"},
    f"{G}.http": {"host": "''", "port": "0"},
    f"{G}.https": {"host": "'corp.proxy'", "port": "3128"},
}
KDE: dict[str, Any] = {
    "kioslaverc": {"Proxy Settings": {"ProxyType": "0", "NoProxyFor": "intranet"}}
}


def setup(
    tmp_path: Path, tools: tuple[str, ...], state: dict[str, Any], platform: str
) -> tuple[FakeOS, SystemProxy]:
    fake = FakeOS(tmp_path / "os", tools)
    fake.state = copy.deepcopy(state)
    return fake, SystemProxy(fake.runner(), Journal(tmp_path / "data"), platform)


def without_fail(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "fail"}


# -- GNOME --------------------------------------------------------------------------------------


def test_gnome_apply_and_revert_exact(tmp_path: Path) -> None:
    fake, sp = setup(tmp_path, ("gsettings",), {"gsettings": GNOME}, "linux")
    status = sp.apply(8080, 30, now=NOW)
    assert status == {"active": True, "guardMinutes": 30, "guardUntil": "2025-06-01T12:30:00Z"}
    assert fake.calls() == [
        ["gsettings", "get", G, "mode"],  # detect
        ["gsettings", "get", G, "mode"],
        ["gsettings", "get", G, "ignore-hosts"],
        ["gsettings", "get", f"{G}.http", "host"],
        ["gsettings", "get", f"{G}.http", "port"],
        ["gsettings", "get", f"{G}.https", "host"],
        ["gsettings", "get", f"{G}.https", "port"],
        ["gsettings", "set", f"{G}.http", "host", "'127.0.0.1'"],
        ["gsettings", "set", f"{G}.http", "port", "8080"],
        ["gsettings", "set", f"{G}.https", "host", "'127.0.0.1'"],
        ["gsettings", "set", f"{G}.https", "port", "8080"],
        ["gsettings", "set", G, "ignore-hosts", "['localhost', '127.0.0.1', '::1']"],
        ["gsettings", "set", G, "mode", "'manual'"],
    ]
    assert fake.state["gsettings"][G]["mode"] == "'manual'"
    journal = sp.journal.read().system_proxy
    assert journal is not None and journal.previous == {"gnome": GNOME}

    fake.clear_calls()
    assert sp.revert() == {"active": False, "guardMinutes": None, "guardUntil": None}
    assert fake.calls()[0] == ["gsettings", "set", G, "mode", "'none'"]  # off first
    assert len(fake.calls()) == 6
    assert fake.state["gsettings"] == GNOME
    assert sp.journal.read().system_proxy is None
    fake.clear_calls()
    sp.revert()  # idempotent: nothing journaled, nothing run
    assert fake.calls() == []


def test_reapply_keeps_the_users_state(tmp_path: Path) -> None:
    fake, sp = setup(tmp_path, ("gsettings",), {"gsettings": GNOME}, "linux")
    sp.apply(8080, 30, now=NOW)
    status = sp.apply(9090, 10, now=NOW)
    assert status["guardUntil"] == "2025-06-01T12:10:00Z"
    assert fake.state["gsettings"][f"{G}.http"]["port"] == "9090"
    journal = sp.journal.read().system_proxy
    assert journal is not None and journal.previous == {"gnome": GNOME} and journal.port == 9090
    sp.revert()
    assert fake.state["gsettings"] == GNOME


def test_guard_and_crash_recovery(tmp_path: Path) -> None:
    fake, sp = setup(tmp_path, ("gsettings",), {"gsettings": GNOME}, "linux")
    sp.apply(8080, 30, now=NOW)
    del sp  # the process "crashes"; only the journal on disk survives
    fresh = SystemProxy(fake.runner(), Journal(tmp_path / "data"), "linux")
    assert fresh.status()["active"]
    assert fresh.seconds_left(NOW + timedelta(minutes=10)) == 20 * 60
    assert not fresh.enforce_guard(NOW + timedelta(minutes=29))
    assert fake.state["gsettings"][G]["mode"] == "'manual'"
    assert fresh.enforce_guard(NOW + timedelta(minutes=30))
    assert fake.state["gsettings"] == GNOME
    assert not fresh.status()["active"]
    assert not fresh.enforce_guard(NOW + timedelta(days=1))


def test_failure_mid_apply_rolls_back(tmp_path: Path) -> None:
    state = {
        "gsettings": GNOME,
        "fail": {"gsettings": {"match": "'manual'", "rc": 1, "stderr": "GSettings: not writable"}},
    }
    fake, sp = setup(tmp_path, ("gsettings",), state, "linux")
    with pytest.raises(CommandError, match="`gsettings` exited with 1: GSettings: not writable"):
        sp.apply(8080, 30, now=NOW)
    # The state read *before* the first change was journaled and is what came back.
    assert fake.state["gsettings"] == GNOME
    assert sp.journal.read().system_proxy is None


# -- KDE ----------------------------------------------------------------------------------------


def test_kde_apply_revert_deletes_keys_that_were_absent(tmp_path: Path) -> None:
    fake, sp = setup(
        tmp_path, ("kwriteconfig5", "kreadconfig5", "dbus-send"), {"kde": KDE}, "linux"
    )
    sp.apply(8080, 30, now=NOW)
    grp = ["--file", "kioslaverc", "--group", "Proxy Settings", "--key"]
    assert fake.calls() == [
        ["kreadconfig5", *grp, "ProxyType"],
        ["kreadconfig5", *grp, "httpProxy"],
        ["kreadconfig5", *grp, "httpsProxy"],
        ["kreadconfig5", *grp, "NoProxyFor"],
        ["kwriteconfig5", *grp, "httpProxy", "http://127.0.0.1 8080"],
        ["kwriteconfig5", *grp, "httpsProxy", "http://127.0.0.1 8080"],
        ["kwriteconfig5", *grp, "NoProxyFor", "localhost,127.0.0.1,::1"],
        ["kwriteconfig5", *grp, "ProxyType", "1"],
        ["dbus-send", "--type=signal", "/KIO/Scheduler",
         "org.kde.KIO.Scheduler.reparseSlaveConfiguration", "string:"],
    ]  # fmt: skip
    fake.clear_calls()
    sp.revert()
    assert fake.calls()[0] == ["kwriteconfig5", *grp, "ProxyType", "0"]
    assert ["kwriteconfig5", *grp, "httpProxy", "--delete"] in fake.calls()
    assert fake.state["kde"] == KDE


def test_linux_uses_gnome_and_kde_when_both_exist(tmp_path: Path) -> None:
    fake, sp = setup(
        tmp_path,
        ("gsettings", "kwriteconfig6", "kreadconfig6"),
        {"gsettings": GNOME, "kde": KDE},
        "linux",
    )
    sp.apply(8080, 30, now=NOW)
    assert fake.state["gsettings"][G]["mode"] == "'manual'"
    assert fake.state["kde"]["kioslaverc"]["Proxy Settings"]["ProxyType"] == "1"
    assert {c[0] for c in fake.calls()} == {"gsettings", "kreadconfig6", "kwriteconfig6"}
    sp.revert()
    assert without_fail(fake.state) == {"gsettings": GNOME, "kde": KDE}


def test_nothing_to_drive(tmp_path: Path) -> None:
    _, sp = setup(tmp_path, (), {}, "linux")
    with pytest.raises(SystemProxyUnavailable, match="llmtap run"):
        sp.apply(8080, 30, now=NOW)
    assert sp.journal.read().system_proxy is None
    # gsettings present but without the GNOME schema (not a GNOME system)
    _, sp2 = setup(tmp_path / "b", ("gsettings",), {"gsettings": {}}, "linux")
    with pytest.raises(SystemProxyUnavailable):
        sp2.apply(8080, 30, now=NOW)


# -- macOS --------------------------------------------------------------------------------------


def mac_service(enabled: str, server: str, port: str, bypass: list[str]) -> dict[str, Any]:
    return {
        "web": {"Enabled": enabled, "Server": server, "Port": port},
        "secure": {"Enabled": enabled, "Server": server, "Port": port},
        "bypass": bypass,
    }


MAC: dict[str, Any] = {
    "ns": {
        "order": ["Wi-Fi", "*Bluetooth PAN", "Thunderbolt Ethernet"],
        "services": {
            "Wi-Fi": mac_service("No", "old.proxy", "3128", []),
            "Bluetooth PAN": mac_service("No", "", "0", []),
            "Thunderbolt Ethernet": mac_service(
                "Yes", "corp.proxy", "8443", ["*.local", "169.254/16"]
            ),
        },
    }
}


def test_macos_every_enabled_service(tmp_path: Path) -> None:
    fake, sp = setup(tmp_path, ("networksetup",), MAC, "darwin")
    sp.apply(8080, 30, now=NOW)
    calls = fake.calls()
    assert not [c for c in calls if "Bluetooth PAN" in c]  # disabled: never read nor touched
    apply_calls = calls[-10:]
    assert apply_calls == [
        call
        for svc in ("Wi-Fi", "Thunderbolt Ethernet")
        for call in (
            ["networksetup", "-setwebproxy", svc, "127.0.0.1", "8080"],
            ["networksetup", "-setsecurewebproxy", svc, "127.0.0.1", "8080"],
            ["networksetup", "-setproxybypassdomains", svc, "localhost", "127.0.0.1", "::1"],
            ["networksetup", "-setwebproxystate", svc, "on"],
            ["networksetup", "-setsecurewebproxystate", svc, "on"],
        )
    ]
    services = fake.state["ns"]["services"]
    for svc in ("Wi-Fi", "Thunderbolt Ethernet"):
        assert services[svc]["web"] == {"Enabled": "Yes", "Server": "127.0.0.1", "Port": "8080"}
        assert services[svc]["secure"] == {"Enabled": "Yes", "Server": "127.0.0.1", "Port": "8080"}
    assert services["Bluetooth PAN"] == MAC["ns"]["services"]["Bluetooth PAN"]

    sp.revert()
    assert fake.state == MAC


def test_macos_service_without_previous_server_is_switched_off(tmp_path: Path) -> None:
    state = copy.deepcopy(MAC)
    state["ns"]["services"]["Wi-Fi"] = mac_service("No", "", "0", [])
    fake, sp = setup(tmp_path, ("networksetup",), state, "darwin")
    sp.apply(8080, 30, now=NOW)
    sp.revert()
    wifi = fake.state["ns"]["services"]["Wi-Fi"]
    # networksetup cannot store an empty server; what matters is that it is off again.
    assert wifi["web"]["Enabled"] == wifi["secure"]["Enabled"] == "No"
    assert wifi["bypass"] == []
    assert (
        fake.state["ns"]["services"]["Thunderbolt Ethernet"]
        == MAC["ns"]["services"]["Thunderbolt Ethernet"]
    )


# -- Windows ------------------------------------------------------------------------------------

WIN: dict[str, Any] = {
    "reg": {"ProxyEnable": ["REG_DWORD", "0"], "ProxyOverride": ["REG_SZ", "*.corp"]},
    "winhttp": {"server": None, "bypass": None},
}


def test_windows_wininet_and_winhttp(tmp_path: Path) -> None:
    fake, sp = setup(tmp_path, ("reg", "netsh"), WIN, "win32")
    sp.apply(8080, 30, now=NOW)
    assert fake.calls() == [
        ["reg", "query", WININET_KEY, "/v", "ProxyEnable"],
        ["reg", "query", WININET_KEY, "/v", "ProxyServer"],
        ["reg", "query", WININET_KEY, "/v", "ProxyOverride"],
        ["netsh", "winhttp", "show", "proxy"],
        ["reg", "add", WININET_KEY, "/v", "ProxyServer", "/t", "REG_SZ", "/d", "127.0.0.1:8080", "/f"],
        ["reg", "add", WININET_KEY, "/v", "ProxyOverride", "/t", "REG_SZ", "/d",
         "localhost;127.0.0.1;::1;<local>", "/f"],
        ["reg", "add", WININET_KEY, "/v", "ProxyEnable", "/t", "REG_DWORD", "/d", "1", "/f"],
        ["netsh", "winhttp", "set", "proxy", "proxy-server=127.0.0.1:8080",
         "bypass-list=localhost;127.0.0.1;::1;<local>"],
    ]  # fmt: skip
    assert fake.state["reg"]["ProxyEnable"] == ["REG_DWORD", "1"]
    assert fake.state["winhttp"]["server"] == "127.0.0.1:8080"

    fake.clear_calls()
    sp.revert()
    assert fake.calls() == [
        ["reg", "add", WININET_KEY, "/v", "ProxyEnable", "/t", "REG_DWORD", "/d", "0", "/f"],
        ["reg", "delete", WININET_KEY, "/v", "ProxyServer", "/f"],
        ["reg", "add", WININET_KEY, "/v", "ProxyOverride", "/t", "REG_SZ", "/d", "*.corp", "/f"],
        ["netsh", "winhttp", "reset", "proxy"],
    ]
    assert fake.state == WIN


def test_windows_previous_winhttp_proxy_is_restored(tmp_path: Path) -> None:
    state = copy.deepcopy(WIN)
    state["winhttp"] = {"server": "corp:3128", "bypass": "*.corp;<local>"}
    fake, sp = setup(tmp_path, ("reg", "netsh"), state, "win32")
    sp.apply(8080, 30, now=NOW)
    sp.revert()
    assert fake.state == state


def test_winhttp_without_admin_rolls_back_wininet(tmp_path: Path) -> None:
    state = copy.deepcopy(WIN)
    state["fail"] = {
        "netsh": {
            "match": "winhttp set",
            "rc": 1,
            "stderr": "Error writing proxy settings. (5) Access is denied.",
        }
    }
    fake, sp = setup(tmp_path, ("reg", "netsh"), state, "win32")
    with pytest.raises(CommandError) as info:
        sp.apply(8080, 30, now=NOW)
    assert (
        str(info.value)
        == "`netsh` exited with 1: Error writing proxy settings. (5) Access is denied."
    )
    assert info.value.status == 500
    assert without_fail(fake.state) == WIN
    assert not sp.status()["active"]


def test_failed_restore_stays_journaled_for_repair(tmp_path: Path) -> None:
    fake, sp = setup(tmp_path, ("reg", "netsh"), WIN, "win32")
    sp.apply(8080, 30, now=NOW)
    st = fake.state
    st["fail"] = {"netsh": {"match": "reset", "rc": 1, "stderr": "Access is denied."}}
    fake.state = st
    with pytest.raises(CommandError, match="Access is denied"):
        sp.revert()
    journal = sp.journal.read().system_proxy
    assert journal is not None and list(journal.previous) == ["winhttp"]  # wininet was restored
    assert fake.state["reg"] == WIN["reg"]
    fake.state = without_fail(fake.state)
    sp.revert()
    assert fake.state == WIN
    assert sp.journal.read().system_proxy is None
