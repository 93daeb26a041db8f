"""Capture modes at runtime: the HTTP proxy listener, the AgentBridge's TLS listener (reverse
mode on 127.0.0.1 and ::1), TLS intercept, bypass patterns and the OS system proxy (with its
guard). An addon (guard enforcement at start, revert at shutdown) and the object the inspector
and AgentBridge APIs drive (``runtime.capture``). Runtime state reaches the other addons as
mitmproxy options, so their hot path reads memory, never the journal on disk."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mitmproxy.proxy import mode_specs

from certs.ca import CAPaths
from router.bridge.divert import BridgeCounters
from router.bridge.journal import Journal
from router.bridge.runner import CommandRunner
from router.bridge.sysproxy import SystemProxy
from router.errors import BadRequest, Conflict, Forbidden
from router.settings import Settings

log = logging.getLogger("llmtap.modes")

# The reverse spec's target is a placeholder that can never resolve: every bridge request is
# sent on to its own host (divert addon), so nothing should ever reach this address.
BRIDGE_PLACEHOLDER = "llmtap-bridge.invalid"
BRIDGE_HOSTS = ("127.0.0.1", "::1")


def port_holder(port: int) -> str | None:
    """Name and pid of the process listening on ``port``, if it can be seen (psutil)."""
    import psutil

    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                if conn.pid:
                    return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
                return "another process"
    except (psutil.Error, OSError):
        return None
    return None


def check_port_free(host: str, port: int) -> None:
    """Raise Conflict naming the holder when ``host:port`` cannot be bound, BadRequest naming
    the fixes when binding a privileged port is not permitted."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                holder = port_holder(port) or "another process"
                raise Conflict(f"port {port} is already in use by {holder}") from None
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise Forbidden(
                    f"not permitted to listen on {host}:{port} (ports below 1024 are "
                    "privileged): run llmtap as root, or grant the capability once with "
                    "`sudo setcap cap_net_bind_service=+ep $(readlink -f $(which python3))`, "
                    "or choose another port (LLMTAP_BRIDGE_PORT / --bridge-port)",
                    code="permission_denied",
                ) from None
            raise BadRequest(f"cannot listen on {host}:{port}: {exc.strerror}") from None


class CaptureModes:
    def __init__(
        self,
        settings: Settings,
        master: Any,
        runner: CommandRunner | None = None,
        custom_hosts: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self.settings = settings
        self.custom_hosts = custom_hosts
        self.master = master
        runner = runner or CommandRunner(path=settings.tools_path)
        self.system = SystemProxy(runner, Journal(settings.data_dir))
        self._guard_task: asyncio.Task[None] | None = None
        self.proxy_host = "127.0.0.1"
        # Mirrors the journal (read once here, then on every change): asked on every flow.
        self._system_active = bool(self.system.status().get("active"))
        self.bridge_counters = BridgeCounters()
        self.bridge_last_started: datetime | None = None
        self.bridge_error: str | None = None
        self.bridge_listener = BridgeListener(self)

    # ------------------------------------------------------------------ addon hooks

    async def running(self) -> None:
        # A guard that expired while llmtap was not running (crash) is enforced now.
        try:
            if self.system.enforce_guard():
                log.warning("reverted a system proxy whose guard expired while llmtap was down")
        except Exception:
            log.exception("could not enforce the system-proxy guard")
        status = self.system.status()
        self._set_system_active(bool(status.get("active")))
        if status.get("active"):
            self._arm_guard()
        if self.settings.http_proxy_autostart:
            try:
                await self.http_proxy("start")
            except Exception as exc:
                log.error("could not start the HTTP proxy: %s", exc)
        if self.settings.bridge_autostart:
            try:
                await self.agent_bridge("start")
            except Exception as exc:
                log.error("could not start the AgentBridge: %s", getattr(exc, "message", exc))

    async def done(self) -> None:
        if self._guard_task is not None:
            self._guard_task.cancel()
        if self.system.status().get("active"):
            try:
                self.system.revert()
            except Exception:
                log.exception("could not revert the system proxy at shutdown (run `llmtap repair`)")

    # ------------------------------------------------------------------ state

    def _proxy_spec(self) -> str:
        return f"regular@{self.proxy_host}:{self.settings.proxy_port}"

    def _regular_modes(self) -> list[str]:
        return [m for m in self.master.options.mode if m.startswith("regular")]

    @property
    def http_proxy_active(self) -> bool:
        return bool(self._regular_modes())

    def system_proxy_active(self) -> bool:
        return self._system_active

    def _set_system_active(self, active: bool) -> None:
        self._system_active = active
        if "llmtap_system_proxy" in self.master.options:
            self.master.options.update(llmtap_system_proxy=active)

    def state(self) -> dict[str, Any]:
        sys_status = self.system.status()
        bridge = self.agent_bridge_state()
        return {
            "running": True,
            "agentBridge": {"active": bridge["running"], "port": bridge["port"]},
            "customHosts": {
                "active": bool(self.custom_hosts()),
                "count": len(self.custom_hosts()),
                "partial": True,
                "note": "a custom host's kind is applied to records captured by every mode; "
                "its hosts-file lines are managed by the AgentBridge DNS controls",
            },
            "httpProxy": {
                "active": self.http_proxy_active,
                "port": self.settings.proxy_port,
                "tlsIntercept": self.settings.tls_intercept,
            },
            "systemProxy": {
                "active": bool(sys_status.get("active")),
                "guardMinutes": sys_status.get("guardMinutes") or self.settings.guard_minutes,
                "guardUntil": sys_status.get("guardUntil"),
            },
        }

    # ------------------------------------------------------------------ actions

    async def http_proxy(self, action: str) -> dict[str, Any]:
        if action == "start":
            if not self.http_proxy_active:
                check_port_free(self.proxy_host, self.settings.proxy_port)
                await self._set_modes([*self.master.options.mode, self._proxy_spec()])
                self._check_started(self._proxy_spec(), "the HTTP proxy", self.settings.proxy_port)
        elif action == "stop":
            if self.system_proxy_active():
                await self.system_proxy("revert")
            await self._set_modes(
                [m for m in self.master.options.mode if not m.startswith("regular")]
            )
        else:
            raise BadRequest(f"unknown action '{action}' (start or stop)")
        return self.state()

    async def tls_intercept(self, enabled: bool) -> dict[str, Any]:
        self.settings.tls_intercept = enabled
        if "llmtap_tls_intercept" in self.master.options:
            self.master.options.update(llmtap_tls_intercept=enabled)
        from router.store import config as store_config

        store_config.set_settings({"tls_intercept": enabled})
        return self.state()

    async def system_proxy(
        self, action: str, port: int | None = None, guard_minutes: int | None = None
    ) -> dict[str, Any]:
        if action == "apply":
            if port is not None and port != self.settings.proxy_port:
                if self.http_proxy_active:
                    await self.http_proxy("stop")
                self.settings.proxy_port = port
            await self.http_proxy("start")
            minutes = guard_minutes or self.settings.guard_minutes
            await asyncio.to_thread(
                self.system.apply, self.settings.proxy_port, minutes, host=self.proxy_host
            )
            self._set_system_active(True)
            self._arm_guard()
        elif action == "revert":
            if self._guard_task is not None:
                self._guard_task.cancel()
                self._guard_task = None
            await asyncio.to_thread(self.system.revert)
            self._set_system_active(False)
        else:
            raise BadRequest(f"unknown action '{action}' (apply or revert)")
        return self.state()

    # ------------------------------------------------------------------ AgentBridge

    def _bridge_specs(self) -> list[str]:
        port = self.settings.bridge_port
        return [f"reverse:https://{BRIDGE_PLACEHOLDER}:443@{h}:{port}" for h in BRIDGE_HOSTS]

    def _bridge_modes(self) -> list[str]:
        return [m for m in self.master.options.mode if m.startswith("reverse:")]

    @property
    def bridge_active(self) -> bool:
        return bool(self._bridge_modes())

    def agent_bridge_state(self) -> dict[str, Any]:
        """``GET agent-bridge/state``: running, port, certReady, interceptedCount,
        activeConnections, lastStartedAt (plus the listen addresses and the last error)."""
        modes = self._bridge_modes()
        bound = self._bound_addresses(modes)
        listen = [_address(a) for a in bound] or [m.rpartition("@")[2] for m in modes]
        return {
            "running": bool(modes),
            "port": self.bridge_port,
            "listen": listen,
            "certReady": CAPaths.of(self.settings.confdir).key_and_cert.exists(),
            "interceptedCount": self.bridge_counters.intercepted,
            "activeConnections": self.bridge_counters.active,
            "lastStartedAt": self.bridge_last_started.isoformat().replace("+00:00", "Z")
            if self.bridge_last_started
            else None,
            "lastError": self.bridge_error,
        }

    async def agent_bridge(self, action: str, port: int | None = None) -> dict[str, Any]:
        """Start, stop or restart the AgentBridge listener (reverse mode, TLS with a leaf per
        SNI from llmtap's CA) on 127.0.0.1 and ::1. Raises Conflict (409) naming the process
        that holds the port, BadRequest naming the fixes when the port is privileged."""
        if action not in ("start", "stop", "restart"):
            raise BadRequest(f"unknown action '{action}' (start, stop or restart)")
        if action in ("stop", "restart") and self.bridge_active:
            await self._set_modes(
                [m for m in self.master.options.mode if not m.startswith("reverse:")]
            )
            self.bridge_counters.active = 0
        if action == "stop":
            return self.agent_bridge_state()
        if port is not None:
            self.settings.bridge_port = port
        if self.bridge_active:
            return self.agent_bridge_state()
        self.bridge_error = None
        try:
            specs = self._bridge_startable()
            await self._set_modes([*self.master.options.mode, *specs])
            for spec in specs:
                self._check_started(spec, "the AgentBridge", self.settings.bridge_port)
        except (Conflict, BadRequest, Forbidden) as exc:
            self.bridge_error = exc.message
            if self.bridge_active:  # one address bound, the other did not: none then
                await self._set_modes(
                    [m for m in self.master.options.mode if not m.startswith("reverse:")]
                )
            raise
        self.bridge_last_started = datetime.now(UTC)
        return self.agent_bridge_state()

    @property
    def bridge_port(self) -> int:
        """The port the AgentBridge listens on: the bound one while it runs (the setting may
        be 0, an ephemeral port), else the configured one."""
        bound = self._bound_addresses(self._bridge_modes())
        return int(bound[0][1]) if bound else self.settings.bridge_port

    def _bound_addresses(self, specs: list[str]) -> list[tuple[str, int]]:
        proxyserver = self.master.addons.get("proxyserver")
        out: list[tuple[str, int]] = []
        for spec in specs:
            try:
                instance = proxyserver.servers[spec]
            except (KeyError, ValueError):
                continue
            out += [(str(a[0]), int(a[1])) for a in instance.listen_addrs]
        return out

    def _bridge_startable(self) -> list[str]:
        """The specs to start: 127.0.0.1 must bind; ::1 is skipped where IPv6 is off."""
        specs = []
        for host, spec in zip(BRIDGE_HOSTS, self._bridge_specs(), strict=True):
            try:
                check_port_free(host, self.settings.bridge_port)
            except (BadRequest, Forbidden):
                if ":" in host and not _has_ipv6_loopback():
                    log.warning("no IPv6 loopback here: the AgentBridge listens on 127.0.0.1 only")
                    continue
                raise
            specs.append(spec)
        return specs

    def set_bypass(self, patterns: list[str]) -> None:
        """Apply the user's bypass patterns at once, in every capture mode (decided at the next
        TLS ClientHello). Raises BadRequest for an invalid pattern; nothing changes then."""
        from router.bridge.bypass import BypassMatcher

        BypassMatcher(patterns)  # validates; raises BadRequest with field details
        self.master.options.update(llmtap_bypass=list(patterns))

    # ------------------------------------------------------------------ internals

    async def _set_modes(self, modes: list[str]) -> None:
        self.master.options.update(mode=modes)
        proxyserver = self.master.addons.get("proxyserver")
        await proxyserver.servers.update([mode_specs.ProxyMode.parse(m) for m in modes])

    def _check_started(self, spec: str, what: str, port: int) -> None:
        proxyserver = self.master.addons.get("proxyserver")
        try:
            instance = proxyserver.servers[spec]
        except KeyError:
            raise BadRequest(f"proxy listener {spec} did not start") from None
        if not instance.is_running:
            error = instance.last_exception
            self.master.options.update(mode=[m for m in self.master.options.mode if m != spec])
            raise Conflict(f"{what} could not start on port {port}: {error}")

    def _arm_guard(self) -> None:
        until = self.system.status().get("guardUntil")
        if not until:
            return
        deadline = datetime.fromisoformat(str(until))
        if self._guard_task is not None:
            self._guard_task.cancel()

        async def guard() -> None:
            delay = (deadline - datetime.now(UTC)).total_seconds()
            await asyncio.sleep(max(delay, 0))
            log.warning("system proxy guard expired: reverting")
            await asyncio.to_thread(self.system.enforce_guard)
            self._set_system_active(bool(self.system.status().get("active")))

        self._guard_task = asyncio.get_running_loop().create_task(guard())


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def _address(addr: tuple[str, int]) -> str:
    host, port = addr
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class BridgeListener:
    """The AgentBridge listener as the control side sees it (router.bridge.control's
    ``BridgeListener`` protocol): running, port, start, stop, counters."""

    def __init__(self, modes: CaptureModes) -> None:
        self._modes = modes

    @property
    def running(self) -> bool:
        return self._modes.bridge_active

    @property
    def port(self) -> int:
        return self._modes.bridge_port

    @property
    def last_error(self) -> str | None:
        """Why the listener last failed to start (None after a successful start)."""
        return self._modes.bridge_error

    async def start(self) -> None:
        await self._modes.agent_bridge("start")

    async def stop(self) -> None:
        await self._modes.agent_bridge("stop")

    def counters(self) -> dict[str, int]:
        c = self._modes.bridge_counters
        return {"interceptedCount": c.intercepted, "activeConnections": c.active}
