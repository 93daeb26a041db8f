"""The system-proxy adapters, one per OS mechanism (GNOME, KDE, macOS networksetup, Windows
WinINet and WinHTTP): each reads the state it will change, applies llmtap's proxy and restores
exactly what it read. :mod:`router.bridge.sysproxy` journals that state and decides when."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

from router.bridge.journal import AdapterState
from router.bridge.runner import CommandError, CommandRunner


class ProxyAdapter(ABC):
    name: ClassVar[str]

    def __init__(self, runner: CommandRunner) -> None:
        self.runner = runner

    @classmethod
    @abstractmethod
    def detect(cls, runner: CommandRunner) -> bool:
        """Whether this adapter's tools exist (and answer) on the runner's PATH."""

    @abstractmethod
    def read_state(self) -> AdapterState:
        """Everything ``apply`` will change, as the OS reports it now."""

    @abstractmethod
    def apply(self, host: str, port: int, bypass: Sequence[str]) -> None: ...

    @abstractmethod
    def restore(self, state: AdapterState) -> None:
        """Put back exactly ``state`` as returned by ``read_state``."""


# -- GNOME ------------------------------------------------------------------------------------

GNOME_SCHEMA = "org.gnome.system.proxy"


def _gvariant_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class GnomeProxy(ProxyAdapter):
    name = "gnome"
    KEYS: ClassVar[dict[str, tuple[str, ...]]] = {
        GNOME_SCHEMA: ("mode", "ignore-hosts"),
        f"{GNOME_SCHEMA}.http": ("host", "port"),
        f"{GNOME_SCHEMA}.https": ("host", "port"),
    }

    @classmethod
    def detect(cls, runner: CommandRunner) -> bool:
        # gsettings exists on many non-GNOME systems; the schema answering is what counts.
        return runner.which("gsettings") is not None and (
            runner.run(["gsettings", "get", GNOME_SCHEMA, "mode"], check=False).returncode == 0
        )

    def read_state(self) -> AdapterState:
        # Values are kept as gsettings prints them (GVariant text), which `set` accepts back
        # verbatim, so restore is exact for every type ('none', @as [], 0, ...).
        return {
            schema: {
                k: self.runner.run(["gsettings", "get", schema, k]).stdout.strip() for k in keys
            }
            for schema, keys in self.KEYS.items()
        }

    def apply(self, host: str, port: int, bypass: Sequence[str]) -> None:
        for proto in ("http", "https"):
            self._set(f"{GNOME_SCHEMA}.{proto}", "host", _gvariant_str(host))
            self._set(f"{GNOME_SCHEMA}.{proto}", "port", str(port))
        self._set(GNOME_SCHEMA, "ignore-hosts", "[" + ", ".join(map(_gvariant_str, bypass)) + "]")
        # Mode last: the proxy is switched on only once it is fully configured.
        self._set(GNOME_SCHEMA, "mode", "'manual'")

    def restore(self, state: AdapterState) -> None:
        # Mode first: traffic stops going to llmtap before the details change back.
        main = state.get(GNOME_SCHEMA, {})
        if main.get("mode") is not None:
            self._set(GNOME_SCHEMA, "mode", str(main["mode"]))
        for schema, values in state.items():
            for key, value in values.items():
                if (schema, key) == (GNOME_SCHEMA, "mode"):
                    continue
                if value is None:
                    self.runner.run(["gsettings", "reset", schema, key])
                else:
                    self._set(schema, key, value)

    def _set(self, schema: str, key: str, value: str) -> None:
        self.runner.run(["gsettings", "set", schema, key, value])


# -- KDE --------------------------------------------------------------------------------------

KDE_GROUP = "Proxy Settings"
KDE_FILE = "kioslaverc"


class KdeProxy(ProxyAdapter):
    name = "kde"
    KEYS: ClassVar[tuple[str, ...]] = ("ProxyType", "httpProxy", "httpsProxy", "NoProxyFor")

    @staticmethod
    def _tools(runner: CommandRunner) -> tuple[str, str] | None:
        for version in ("6", "5"):
            write, read = f"kwriteconfig{version}", f"kreadconfig{version}"
            if runner.which(write) and runner.which(read):
                return write, read
        return None

    @classmethod
    def detect(cls, runner: CommandRunner) -> bool:
        return cls._tools(runner) is not None

    @property
    def tools(self) -> tuple[str, str]:
        tools = self._tools(self.runner)
        if tools is None:
            raise CommandError("kwriteconfig5", 127, "kwriteconfig5/6 and kreadconfig5/6 not found")
        return tools

    def read_state(self) -> AdapterState:
        read = self.tools[1]
        values: dict[str, str | None] = {}
        for key in self.KEYS:
            out = self.runner.run([read, "--file", KDE_FILE, "--group", KDE_GROUP, "--key", key])
            # kreadconfig prints nothing for a missing key; KDE treats empty and missing alike.
            values[key] = out.stdout.rstrip("\n") or None
        return {KDE_GROUP: values}

    def apply(self, host: str, port: int, bypass: Sequence[str]) -> None:
        url = f"http://{host} {port}"  # KDE's own notation: scheme://host<space>port
        self._write("httpProxy", url)
        self._write("httpsProxy", url)
        self._write("NoProxyFor", ",".join(bypass))
        self._write("ProxyType", "1")  # 1 = manual, set last
        self._notify()

    def restore(self, state: AdapterState) -> None:
        values = state.get(KDE_GROUP, {})
        for key in sorted(values, key=lambda k: k != "ProxyType"):
            self._write(key, values[key])
        self._notify()

    def _write(self, key: str, value: str | None) -> None:
        argv = [self.tools[0], "--file", KDE_FILE, "--group", KDE_GROUP, "--key", key]
        self.runner.run([*argv, "--delete"] if value is None else [*argv, value])

    def _notify(self) -> None:
        # Running KIO workers re-read kioslaverc on this signal; without a session bus there
        # is nobody to tell, which is fine.
        if self.runner.which("dbus-send"):
            self.runner.run(
                [
                    "dbus-send",
                    "--type=signal",
                    "/KIO/Scheduler",
                    "org.kde.KIO.Scheduler.reparseSlaveConfiguration",
                    "string:",
                ],
                check=False,
            )


# -- macOS ------------------------------------------------------------------------------------


class MacProxy(ProxyAdapter):
    """Every enabled network service, not only Wi-Fi: the active one may be Ethernet or a
    dock, and the order changes when the user moves."""

    name = "macos"

    @classmethod
    def detect(cls, runner: CommandRunner) -> bool:
        return runner.which("networksetup") is not None

    def services(self) -> list[str]:
        out = self.runner.run(["networksetup", "-listallnetworkservices"]).stdout
        lines = [line for line in out.splitlines() if line.strip()]
        if lines and "asterisk" in lines[0].lower():
            lines = lines[1:]
        return [line for line in lines if not line.startswith("*")]

    def read_state(self) -> AdapterState:
        state: AdapterState = {}
        for svc in self.services():
            web = self._get("-getwebproxy", svc)
            secure = self._get("-getsecurewebproxy", svc)
            state[svc] = {
                "web_enabled": web.get("Enabled", "No"),
                "web_server": web.get("Server", ""),
                "web_port": web.get("Port", "0"),
                "secure_enabled": secure.get("Enabled", "No"),
                "secure_server": secure.get("Server", ""),
                "secure_port": secure.get("Port", "0"),
                "bypass": self._bypass(svc),
            }
        return state

    def apply(self, host: str, port: int, bypass: Sequence[str]) -> None:
        for svc in self.services():
            self._ns("-setwebproxy", svc, host, str(port))
            self._ns("-setsecurewebproxy", svc, host, str(port))
            self._ns("-setproxybypassdomains", svc, *(bypass or ["Empty"]))
            self._ns("-setwebproxystate", svc, "on")
            self._ns("-setsecurewebproxystate", svc, "on")

    def restore(self, state: AdapterState) -> None:
        for svc, values in state.items():
            for kind, setter in (("web", "-setwebproxy"), ("secure", "-setsecurewebproxy")):
                server, port = values.get(f"{kind}_server"), values.get(f"{kind}_port")
                # networksetup can't store an empty server; a disabled proxy's server is inert.
                if server:
                    self._ns(setter, svc, server, port or "0")
                on = (values.get(f"{kind}_enabled") or "No").lower() == "yes"
                self._ns(f"{setter}state", svc, "on" if on else "off")
            domains = values.get("bypass")
            self._ns(
                "-setproxybypassdomains", svc, *(domains.split("\n") if domains else ["Empty"])
            )

    def _get(self, flag: str, svc: str) -> dict[str, str]:
        out = self.runner.run(["networksetup", flag, svc]).stdout
        pairs = (line.split(":", 1) for line in out.splitlines() if ":" in line)
        return {k.strip(): v.strip() for k, v in pairs}

    def _bypass(self, svc: str) -> str | None:
        out = self.runner.run(["networksetup", "-getproxybypassdomains", svc]).stdout
        if "aren't any" in out or not out.strip():
            return None
        return "\n".join(line.strip() for line in out.splitlines() if line.strip())

    def _ns(self, *args: str) -> None:
        self.runner.run(["networksetup", *args])


# -- Windows ----------------------------------------------------------------------------------

WININET_KEY = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Internet Settings"


class WinInetProxy(ProxyAdapter):
    """The per-user proxy browsers and most apps use. Apps read it at start, so already
    running ones may keep their old setting until restarted."""

    name = "wininet"
    VALUES: ClassVar[tuple[str, ...]] = ("ProxyEnable", "ProxyServer", "ProxyOverride")

    @classmethod
    def detect(cls, runner: CommandRunner) -> bool:
        return runner.which("reg") is not None

    def read_state(self) -> AdapterState:
        state: AdapterState = {}
        for value in self.VALUES:
            res = self.runner.run(["reg", "query", WININET_KEY, "/v", value], check=False)
            m = re.search(rf"^\s*{value}\s+(REG_\w+)[ \t]*(.*)$", res.stdout, re.M)
            # A missing value ("unable to find") is recorded as absent so restore deletes it.
            state[value] = (
                {"type": m[1], "data": m[2].rstrip()} if res.returncode == 0 and m else {}
            )
        return state

    def apply(self, host: str, port: int, bypass: Sequence[str]) -> None:
        self._add("ProxyServer", "REG_SZ", f"{host}:{port}")
        self._add("ProxyOverride", "REG_SZ", ";".join([*bypass, "<local>"]))
        self._add("ProxyEnable", "REG_DWORD", "1")

    def restore(self, state: AdapterState) -> None:
        for value in sorted(state, key=lambda v: v != "ProxyEnable"):
            saved = state[value]
            kind, data = saved.get("type"), saved.get("data")
            if kind is None:
                self.runner.run(["reg", "delete", WININET_KEY, "/v", value, "/f"])
            else:
                if kind == "REG_DWORD" and data and data.lower().startswith("0x"):
                    data = str(int(data, 16))
                self._add(value, kind, data or "")

    def _add(self, value: str, kind: str, data: str) -> None:
        self.runner.run(["reg", "add", WININET_KEY, "/v", value, "/t", kind, "/d", data, "/f"])


class WinHttpProxy(ProxyAdapter):
    """The machine-wide proxy services and some CLIs use (needs an elevated prompt)."""

    name = "winhttp"

    @classmethod
    def detect(cls, runner: CommandRunner) -> bool:
        return runner.which("netsh") is not None

    def read_state(self) -> AdapterState:
        out = self.runner.run(["netsh", "winhttp", "show", "proxy"]).stdout
        server = re.search(r"Proxy Server\(s\)\s*:\s*(.*)$", out, re.M)
        bypass = re.search(r"Bypass List\s*:\s*(.*)$", out, re.M)
        return {
            "winhttp": {
                "server": server[1].strip() if server else None,
                "bypass": bypass[1].strip() if bypass else None,
            }
        }

    def apply(self, host: str, port: int, bypass: Sequence[str]) -> None:
        self.runner.run(
            [
                "netsh",
                "winhttp",
                "set",
                "proxy",
                f"proxy-server={host}:{port}",
                "bypass-list=" + ";".join([*bypass, "<local>"]),
            ]
        )

    def restore(self, state: AdapterState) -> None:
        saved = state.get("winhttp", {})
        server, bypass = saved.get("server"), saved.get("bypass")
        if not server:
            self.runner.run(["netsh", "winhttp", "reset", "proxy"])
            return
        argv = ["netsh", "winhttp", "set", "proxy", f"proxy-server={server}"]
        if bypass and bypass != "(none)":
            argv.append(f"bypass-list={bypass}")
        self.runner.run(argv)


ADAPTERS: dict[str, type[ProxyAdapter]] = {
    a.name: a for a in (GnomeProxy, KdeProxy, MacProxy, WinInetProxy, WinHttpProxy)
}


def adapter_names(platform: str) -> tuple[str, ...]:
    if platform == "darwin":
        return ("macos",)
    if platform == "win32":
        return ("wininet", "winhttp")
    return ("gnome", "kde")  # Linux and the BSDs run the same desktops
