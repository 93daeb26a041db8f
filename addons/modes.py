"""Capture modes at runtime: the HTTP proxy listener, TLS intercept and the OS system proxy
(with its guard). An addon (guard enforcement at start, revert at shutdown) and the object
the inspector API drives (``runtime.capture``)."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mitmproxy.proxy import mode_specs

from router.bridge.journal import Journal
from router.bridge.runner import CommandRunner
from router.bridge.sysproxy import SystemProxy
from router.errors import BadRequest, Conflict
from router.settings import Settings

log = logging.getLogger("llmtap.modes")


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
    """Raise Conflict naming the holder when ``host:port`` cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                holder = port_holder(port) or "another process"
                raise Conflict(f"port {port} is already in use by {holder}") from None
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
        # Whether the OS proxy points at us, as last read from the journal: the capture path
        # asks on every flow, and reading (and validating) the journal file per flow cost
        # more than the flow. Refreshed whenever llmtap reads or changes the journal.
        self._system_active: bool | None = None

    # ------------------------------------------------------------------ addon hooks

    async def running(self) -> None:
        # A guard that expired while llmtap was not running (crash) is enforced now.
        try:
            if self.system.enforce_guard():
                log.warning("reverted a system proxy whose guard expired while llmtap was down")
        except Exception:
            log.exception("could not enforce the system-proxy guard")
        status = self._system_status()
        if status.get("active"):
            self._arm_guard()
        if self.settings.http_proxy_autostart:
            try:
                await self.http_proxy("start")
            except Exception as exc:
                log.error("could not start the HTTP proxy: %s", exc)

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
        if self._system_active is None:
            self._system_status()
        return bool(self._system_active)

    def _system_status(self) -> Any:
        status = self.system.status()
        self._system_active = bool(status.get("active"))
        return status

    def state(self) -> dict[str, Any]:
        sys_status = self._system_status()
        from web.inspector import AGENT_BRIDGE_NOTE

        return {
            "running": True,
            "agentBridge": {"active": False, "note": AGENT_BRIDGE_NOTE},
            "customHosts": {
                "active": bool(self.custom_hosts()),
                "count": len(self.custom_hosts()),
                "partial": True,
                "note": "a custom host's kind is applied to records captured by the proxy modes; "
                "hosts-file capture needs the AgentBridge listener (not available yet)",
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
                self._check_started(self._proxy_spec())
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
            self._system_active = None
            self._arm_guard()
        elif action == "revert":
            if self._guard_task is not None:
                self._guard_task.cancel()
                self._guard_task = None
            await asyncio.to_thread(self.system.revert)
            self._system_active = None
        else:
            raise BadRequest(f"unknown action '{action}' (apply or revert)")
        return self.state()

    # ------------------------------------------------------------------ internals

    async def _set_modes(self, modes: list[str]) -> None:
        self.master.options.update(mode=modes)
        proxyserver = self.master.addons.get("proxyserver")
        await proxyserver.servers.update([mode_specs.ProxyMode.parse(m) for m in modes])

    def _check_started(self, spec: str) -> None:
        proxyserver = self.master.addons.get("proxyserver")
        try:
            instance = proxyserver.servers[spec]
        except KeyError:
            raise BadRequest(f"proxy listener {spec} did not start") from None
        if not instance.is_running:
            error = instance.last_exception
            self.master.options.update(mode=[m for m in self.master.options.mode if m != spec])
            raise Conflict(
                f"the HTTP proxy could not start on port {self.settings.proxy_port}: {error}"
            )

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
            self._system_active = None

        self._guard_task = asyncio.get_running_loop().create_task(guard())
