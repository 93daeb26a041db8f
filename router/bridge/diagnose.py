"""``GET diagnose``: the AgentBridge checks (server, listener, CA, trust, DNS per agent, hosts
file), each failing one with the fix to run."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from certs import ca as ca_mod
from router.store import agents as store_agents

if TYPE_CHECKING:
    from router.bridge.control import BridgeControl

LISTENER_MISSING = (
    "this process runs no capture, so it has no AgentBridge listener: hosts-file DNS, "
    "certificates, mappings and bypass are managed, but nothing listens on the bridge port"
)
LISTENER_FIX = "start llmtap with capture (llmtap up), then start the bridge"


CheckStatus = Literal["ok", "fail", "skip"]


@dataclass(slots=True)
class Check:
    id: str
    status: CheckStatus
    detail: str
    fix: str | None = None
    agent: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "ok": self.status != "fail",
            "status": self.status,
            "detail": self.detail,
        }
        if self.agent is not None:
            out["agent"] = self.agent
        if self.fix is not None:
            out["fix"] = self.fix
        return out


def diagnose(bridge: BridgeControl, *, server_running: bool) -> dict[str, Any]:
    checks: list[Check] = []
    if server_running:
        checks.append(Check("server-running", "ok", "llmtap is running"))
    else:
        checks.append(
            Check("server-running", "fail", "llmtap is not running", fix="run: llmtap up")
        )
    checks.append(_listener_check(bridge))
    if not bridge.certs.ca_exists():
        checks.append(
            Check(
                "cert-exists",
                "fail",
                f"no CA in {bridge.settings.confdir}",
                fix="run: llmtap ca show (creates it)",
            )
        )
    else:
        ca = bridge.certs.ca()
        checks.append(Check("cert-exists", "ok", f"{ca.paths.cert} ({ca.fingerprint_sha256})"))
    if bridge.certs.cert_trusted():
        checks.append(Check("cert-trusted", "ok", "the CA's fingerprint is in the OS store"))
    else:
        checks.append(
            Check(
                "cert-trusted",
                "fail",
                "the CA's fingerprint is not in the OS trust store",
                fix="run: sudo llmtap ca trust (or set NODE_EXTRA_CA_CERTS / SSL_CERT_FILE"
                f" to {ca_mod.CAPaths.of(bridge.settings.confdir).cert} per tool)",
            )
        )
    checks += _dns_checks(bridge)
    if bridge.hosts.is_writable():
        checks.append(Check("hosts-file-writable", "ok", f"{bridge.hosts.path} is writable"))
    else:
        checks.append(
            Check(
                "hosts-file-writable",
                "fail",
                f"{bridge.hosts.path} is not writable by this user",
                fix="run llmtap with sudo (e.g. sudo llmtap agents enable AGENT)",
            )
        )
    rows = [c.as_dict() for c in checks]
    return {"ok": all(r["ok"] for r in rows), "checks": rows}


def _listener_check(bridge: BridgeControl) -> Check:
    port = bridge.listener.port if bridge.listener is not None else bridge.settings.bridge_port
    if bridge.listener is None:
        return Check("server-reachable", "fail", LISTENER_MISSING, fix=LISTENER_FIX)
    if not bridge.listener.running:
        return Check(
            "server-reachable",
            "fail",
            f"the AgentBridge listener is not running (port {port})",
            fix="run: llmtap bridge start",
        )
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    except OSError as exc:
        return Check(
            "server-reachable",
            "fail",
            f"127.0.0.1:{port} does not accept connections: {exc.strerror or exc}",
            fix="llmtap bridge stop && llmtap bridge start; check what holds the port",
        )
    return Check("server-reachable", "ok", f"127.0.0.1:{port} accepts connections")


def _dns_checks(bridge: BridgeControl) -> list[Check]:
    marked = bridge.hosts.marked_hosts()
    states = {s.agent_id: s for s in store_agents.list_agent_states()}
    out: list[Check] = []
    for agent in bridge.agents.agents:
        state = states.get(agent.agent_id)
        if state is None or not state.dns_enabled:
            out.append(Check("dns-configured", "skip", "not enabled", agent=agent.agent_id))
            continue
        missing = [h for h in agent.hosts if h.lower() not in marked]
        if not missing:
            out.append(
                Check("dns-configured", "ok", "hosts-file lines present", agent=agent.agent_id)
            )
        elif not bridge.listener_running:
            out.append(
                Check(
                    "dns-configured",
                    "fail",
                    "enabled, but the listener is stopped so its lines are removed",
                    fix="run: llmtap bridge start",
                    agent=agent.agent_id,
                )
            )
        else:
            out.append(
                Check(
                    "dns-configured",
                    "fail",
                    f"no hosts-file line for {', '.join(missing)}",
                    fix=f"run: llmtap agents enable {agent.agent_id}",
                    agent=agent.agent_id,
                )
            )
    return out
