"""System-proxy capture: the manager that journals the previous state before any change,
reverts exactly it, and enforces the guard deadline (also after a crash). The per-OS adapters
it drives are in :mod:`router.bridge.proxy_adapters`."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from router.bridge.journal import Journal, ProxyEntry
from router.bridge.proxy_adapters import ADAPTERS, ProxyAdapter, adapter_names
from router.bridge.runner import CommandError, CommandRunner
from router.errors import NotImplementedYet

log = logging.getLogger(__name__)

# Loopback must never go through the proxy: the UI/API and the router live there.
DEFAULT_BYPASS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")


class SystemProxyUnavailable(NotImplementedYet):
    """No way to set the OS proxy on this system: not a server fault, a missing feature here."""

    code = "system_proxy_unavailable"


class ProxyStatus(TypedDict):
    active: bool
    guardMinutes: int | None
    guardUntil: str | None


# -- manager ----------------------------------------------------------------------------------


class SystemProxy:
    """Points the OS proxy at llmtap's http-proxy listener and back. The journal, not this
    object, is the source of truth, so a new instance (after a crash) can revert."""

    def __init__(
        self, runner: CommandRunner, journal: Journal, platform: str = sys.platform
    ) -> None:
        self.runner = runner
        self.journal = journal
        self.platform = platform

    def detected(self) -> list[ProxyAdapter]:
        return [
            ADAPTERS[name](self.runner)
            for name in adapter_names(self.platform)
            if ADAPTERS[name].detect(self.runner)
        ]

    def apply(
        self,
        port: int,
        guard_minutes: int = 30,
        *,
        host: str = "127.0.0.1",
        bypass: Sequence[str] = DEFAULT_BYPASS,
        now: datetime | None = None,
    ) -> ProxyStatus:
        now = _utc(now)
        until = now + timedelta(minutes=guard_minutes)
        entry = self.journal.read().system_proxy
        if entry is None:
            adapters = self.detected()
            if not adapters:
                tools = ", ".join(adapter_names(self.platform))
                raise SystemProxyUnavailable(
                    f"no way to set the system proxy here (looked for: {tools}); "
                    "use `llmtap run -- CMD` or `llmtap env` instead"
                )
            # Read everything before touching anything, and have it on disk first.
            previous = {a.name: a.read_state() for a in adapters}
            entry = ProxyEntry(
                platform=self.platform,
                host=host,
                port=port,
                guard_minutes=guard_minutes,
                applied_at=now,
                guard_until=until,
                previous=previous,
            )
        else:
            # Already applied: the journaled state is the user's, not ours. Re-reading now
            # would record llmtap's own settings as "previous" and revert would keep them.
            adapters = [ADAPTERS[name](self.runner) for name in entry.previous if name in ADAPTERS]
            entry = entry.model_copy(
                update={
                    "host": host,
                    "port": port,
                    "guard_minutes": guard_minutes,
                    "guard_until": until,
                }
            )
        with self.journal.edit() as data:
            data.system_proxy = entry
        try:
            for adapter in adapters:
                adapter.apply(host, port, bypass)
        except CommandError:
            try:
                self.revert()
            except CommandError as exc:
                log.warning("rolling back the system proxy failed too: %s", exc)
            raise
        return self.status()

    def revert(self) -> ProxyStatus:
        """Restore the journaled state adapter by adapter; a failed one stays in the journal
        (so ``repair`` can retry) and its error is raised after the others were tried."""
        entry = self.journal.read().system_proxy
        if entry is None:
            return self.status()
        failures: list[CommandError] = []
        for name, state in entry.previous.items():
            cls = ADAPTERS.get(name)
            if cls is None:
                log.warning("undo journal names unknown proxy adapter %r; dropping it", name)
            else:
                try:
                    cls(self.runner).restore(state)
                except CommandError as exc:
                    failures.append(exc)
                    continue
            with self.journal.edit() as data:
                if data.system_proxy is not None:
                    data.system_proxy.previous.pop(name, None)
        if failures:
            raise failures[0]
        with self.journal.edit() as data:
            data.system_proxy = None
        return self.status()

    def enforce_guard(self, now: datetime | None = None) -> bool:
        """Revert when the guard deadline has passed; True when it did. Called at start,
        by ``repair`` and by the runtime's timer."""
        entry = self.journal.read().system_proxy
        if entry is None or _utc(now) < entry.guard_until:
            return False
        self.revert()
        return True

    def seconds_left(self, now: datetime | None = None) -> float | None:
        entry = self.journal.read().system_proxy
        if entry is None:
            return None
        return max(0.0, (entry.guard_until - _utc(now)).total_seconds())

    def status(self) -> ProxyStatus:
        entry = self.journal.read().system_proxy
        if entry is None:
            return ProxyStatus(active=False, guardMinutes=None, guardUntil=None)
        return ProxyStatus(
            active=True,
            guardMinutes=entry.guard_minutes,
            guardUntil=entry.guard_until.isoformat().replace("+00:00", "Z"),
        )


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now
