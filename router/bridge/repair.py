"""``repair`` (API and CLI, server running or not): remove every hosts-file line llmtap wrote
and revert the system proxy from the undo journal. Idempotent; reports instead of raising."""

from __future__ import annotations

from typing import TypedDict

from router.bridge.hostsfile import HostsFile
from router.bridge.sysproxy import SystemProxy
from router.errors import LlmtapError


class RepairReport(TypedDict):
    hostsLinesRemoved: list[str]
    resolverFlushed: bool
    systemProxyReverted: bool
    errors: list[str]


def repair(hosts: HostsFile, proxy: SystemProxy) -> RepairReport:
    """Both halves are always attempted: a hosts file needing sudo must not keep the proxy
    pointing at a dead listener, nor the other way round."""
    report = RepairReport(
        hostsLinesRemoved=[], resolverFlushed=False, systemProxyReverted=False, errors=[]
    )
    try:
        change = hosts.remove(None, command="llmtap repair")
        report["hostsLinesRemoved"] = change.removed
        report["resolverFlushed"] = bool(change.flush and change.flush.flushed)
    except LlmtapError as exc:
        report["errors"].append(exc.message)
    try:
        was_active = proxy.status()["active"]
        proxy.revert()
        report["systemProxyReverted"] = was_active
    except LlmtapError as exc:
        report["errors"].append(exc.message)
    return report
