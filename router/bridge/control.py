"""AgentBridge control, shared by the API and the offline CLI: per-agent DNS in the hosts file,
model mappings, bypass, the listener, diagnose and repair; the CA and the upstream CA are its
``certs`` (:mod:`router.bridge.ca_control`). The :443 listener itself is the edge's (mitmproxy); it is reached through the small
:class:`BridgeListener` interface, set by the composition root when the process has one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from certs import trust as trust_mod
from router.bridge.agents import Agent, AgentCatalog, default_catalog
from router.bridge.bypass import DEFAULT_PATTERNS, normalize_pattern
from router.bridge.ca_control import CAControl, trust_config
from router.bridge.diagnose import LISTENER_MISSING, diagnose
from router.bridge.hostsfile import HostsChange, HostsFile
from router.bridge.journal import Journal
from router.bridge.repair import RepairReport, repair
from router.bridge.runner import CommandRunner
from router.bridge.sysproxy import SystemProxy
from router.catalog import Catalog
from router.errors import BadRequest, FieldError, LlmtapError, NotImplementedYet
from router.settings import Settings
from router.store import agents as store_agents
from router.store.db import utcnow


class BridgeListener(Protocol):
    """What the control side needs from the :443 listener (mitmproxy reverse mode).

    ``start`` raises ``Conflict`` naming the process that holds the port, or ``Forbidden``
    naming the fixes when binding a low port is not permitted."""

    @property
    def running(self) -> bool: ...

    @property
    def port(self) -> int: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def counters(self) -> Mapping[str, int]:
        """``interceptedCount`` and ``activeConnections``."""
        ...

    @property
    def last_error(self) -> str | None:
        """Why it last failed to start (None once a start succeeded)."""
        ...


@dataclass
class BridgeControl:
    settings: Settings
    runner: CommandRunner
    catalog: Catalog | None = None  # the router's (mapping targets); None: not checked
    agents: AgentCatalog = field(default_factory=default_catalog)
    trust: trust_mod.TrustConfig = field(default_factory=trust_mod.TrustConfig)
    # Set by the composition root of a process that has them:
    listener: BridgeListener | None = None
    on_bypass: Callable[[list[str]], None] | None = None  # the user's patterns, applied live
    custom_hosts: Callable[[], Iterable[str]] = lambda: ()  # enabled custom hosts
    last_started_at: datetime | None = None
    # The last failure of a start, stop or DNS change made through this control (the
    # listener's own start failures, e.g. at autostart, come from the listener).
    last_error: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, catalog: Catalog | None = None) -> BridgeControl:
        return cls(
            settings=settings,
            runner=CommandRunner(path=settings.tools_path),
            catalog=catalog,
            trust=trust_config(settings),
        )

    def __post_init__(self) -> None:
        self.journal = Journal(self.settings.data_dir)
        self.hosts = HostsFile(
            self.settings.hosts_file, self.settings.data_dir, self.journal, self.runner
        )
        self.certs = CAControl(self.settings, self.runner, self.trust, self.agents)

    # ------------------------------------------------------------------ agents

    def agent(self, agent_id: str) -> Agent:
        found = self.agents.get(agent_id)
        if found is None:
            known = ", ".join(a.agent_id for a in self.agents.agents)
            raise BadRequest(
                f"unknown agent '{agent_id}'",
                [FieldError("agentId", f"must be one of {known}")],
                code="unknown_agent",
            )
        return found

    @property
    def listener_running(self) -> bool:
        return self.listener is not None and self.listener.running

    def list_agents(self) -> list[dict[str, Any]]:
        """All agents with their stored state, what the hosts file really says, and whether
        (and why not) their calls can be diverted."""
        marked = self.hosts.marked_hosts()
        trusted = self.certs.cert_trusted()
        states = {s.agent_id: s for s in store_agents.list_agent_states()}
        out: list[dict[str, Any]] = []
        for agent in self.agents.agents:
            state = states.get(agent.agent_id) or store_agents.get_agent_state(agent.agent_id)
            row = state.model_dump(mode="json")
            row["cert_trusted"] = trusted
            row.update(
                display_name=agent.display_name,
                hosts=list(agent.hosts),
                format=agent.format,
                divert=agent.divert,
                capture_only_reason=agent.capture_only_reason,
                dns_active=bool(agent.hosts) and all(h.lower() in marked for h in agent.hosts),
                mappings=len(store_agents.list_mappings(agent.agent_id)),
            )
            out.append(row)
        return out

    async def set_dns(self, agent_id: str, enabled: bool) -> dict[str, Any]:
        """Add or remove the agent's hosts-file lines. Enabling starts the listener first
        when this process has one, so an agent never resolves to a dead port."""
        agent = self.agent(agent_id)
        if enabled and not agent.hosts:
            raise BadRequest(
                f"{agent.agent_id} has no known hosts to redirect",
                [FieldError("agentId", agent.capture_only_reason or "no hosts")],
            )
        warning = None
        if enabled and self.listener is not None and not self.listener.running:
            try:
                await self.start_server()
            except LlmtapError as exc:
                store_agents.set_agent_state(agent_id, last_error=exc.message)
                raise
        elif enabled and self.listener is None:
            warning = (
                "the AgentBridge listener is not running in this process: calls to "
                f"{', '.join(agent.hosts)} fail until it runs (`llmtap bridge start`)"
            )
        command = f"llmtap agents {'enable' if enabled else 'disable'} {agent_id}"
        edit = self.hosts.add if enabled else self.hosts.remove
        try:
            # Off the event loop: the resolver flush runs an OS command.
            change = await asyncio.to_thread(edit, agent.hosts, command=command)
        except LlmtapError as exc:
            self.last_error = exc.message
            store_agents.set_agent_state(agent_id, last_error=exc.message)
            raise
        state = store_agents.set_agent_state(
            agent_id, dns_enabled=enabled, setup_completed=enabled or None, clear_error=True
        )
        out: dict[str, Any] = state.model_dump(mode="json") | _change_wire(change)
        if enabled:
            out["hint"] = "restart the agent (or its IDE) so it resolves the host again"
        if warning:
            out["warning"] = warning
        return out

    def set_route_all(self, agent_id: str, route_all: bool) -> dict[str, Any]:
        agent = self.agent(agent_id)
        if route_all and not agent.divert:
            raise BadRequest(f"{agent_id} is capture-only", [FieldError("routeAll", _why(agent))])
        return store_agents.set_agent_state(agent_id, route_all=route_all).model_dump(mode="json")

    # ------------------------------------------------------------------ mappings

    def mappings(self, agent_id: str) -> list[dict[str, Any]]:
        self.agent(agent_id)
        return [m.model_dump(mode="json") for m in store_agents.list_mappings(agent_id)]

    def put_mappings(
        self, agent_id: str, items: Iterable[tuple[str, str, str | None]]
    ) -> list[dict[str, Any]]:
        """Replace the agent's set atomically, after checking every target resolves."""
        agent = self.agent(agent_id)
        rows = list(items)
        if rows and not agent.divert:
            raise BadRequest(
                f"{agent_id} is capture-only: its calls are recorded, never rerouted",
                [FieldError("mappings", _why(agent))],
            )
        errors: list[FieldError] = []
        for i, (_, target, effort) in enumerate(rows):
            if problem := self.target_problem(target):
                errors.append(FieldError(f"mappings.{i}.target", problem))
            try:
                store_agents.normalize_effort(effort)
            except ValueError as exc:
                errors.append(FieldError(f"mappings.{i}.effort", str(exc)))
        if errors:
            raise BadRequest("invalid mappings", errors)
        store_agents.replace_mappings(agent_id, rows)
        return self.mappings(agent_id)

    def target_problem(self, target: str) -> str | None:
        """Why ``target`` is not ``provider/model``, an alias or a combo (None when it is)."""
        cat = self.catalog
        t = target.strip()
        if cat is None or not t:
            return None
        if t in cat.aliases or t in cat.combos:
            return None
        ref, sep, model = t.partition("/")
        if sep and model and cat.connection_by_ref(ref):
            return None
        names = sorted({c.name for c in cat.connections.values()})
        known = ", ".join(names) or "none configured"
        return (
            f"'{t}' does not resolve: use provider/model (providers: {known}), an alias or a combo"
        )

    # ------------------------------------------------------------------ bypass

    def bypass_rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = [
            {"pattern": p, "source": "default", "created_at": None} for p in DEFAULT_PATTERNS
        ]
        rows += [b.model_dump(mode="json") for b in store_agents.list_bypass()]
        return rows

    def put_bypass(self, patterns: list[str]) -> list[dict[str, Any]]:
        errors: list[FieldError] = []
        clean: list[str] = []
        for i, raw in enumerate(patterns):
            try:
                clean.append(normalize_pattern(raw))
            except BadRequest as exc:
                errors.append(FieldError(f"patterns.{i}", exc.details[0].message))
        if errors:
            raise BadRequest("invalid bypass patterns", errors)
        store_agents.replace_bypass(clean)
        if self.on_bypass is not None:
            self.on_bypass([p.pattern for p in store_agents.list_bypass()])
        return self.bypass_rows()

    # ------------------------------------------------------------------ the listener

    def state(self) -> dict[str, Any]:
        counters = dict(self.listener.counters()) if self.listener is not None else {}
        port = self.listener.port if self.listener is not None else self.settings.bridge_port
        out: dict[str, Any] = {
            "running": self.listener_running,
            "port": port,
            "certReady": self.certs.ca_exists(),
            "interceptedCount": int(counters.get("interceptedCount", 0)),
            "activeConnections": int(counters.get("activeConnections", 0)),
            "lastStartedAt": self.last_started_at.isoformat() if self.last_started_at else None,
            "lastError": self.last_error
            or (self.listener.last_error if self.listener is not None else None),
            "available": self.listener is not None,
        }
        if self.listener is None:
            out["note"] = LISTENER_MISSING
        return out

    async def start_server(self) -> dict[str, Any]:
        if self.listener is None:
            raise NotImplementedYet(LISTENER_MISSING)
        self.certs.ca()  # the listener issues leaves from it
        if not self.listener.running:
            try:
                await self.listener.start()
            except LlmtapError as exc:
                self.last_error = exc.message
                for agent in self._dns_agents():
                    store_agents.set_agent_state(agent.agent_id, last_error=exc.message)
                raise
            self.last_error = None
            self.last_started_at = utcnow()
            for agent in self._dns_agents():
                store_agents.set_agent_state(
                    agent.agent_id, last_started_at=self.last_started_at, clear_error=True
                )
        try:
            await asyncio.to_thread(self.apply_dns)
        except LlmtapError as exc:
            self.last_error = exc.message
            raise
        return self.state()

    async def stop_server(self) -> dict[str, Any]:
        # DNS lines go first, so agents never resolve to a port nobody listens on.
        try:
            await asyncio.to_thread(self.remove_dns)
        except LlmtapError as exc:
            self.last_error = exc.message
            raise
        if self.listener is not None and self.listener.running:
            await self.listener.stop()
        return self.state()

    def apply_dns(self) -> HostsChange:
        """Lines for every agent whose DNS is enabled and every enabled custom host."""
        hosts = [h for a in self._dns_agents() for h in a.hosts]
        hosts += list(self.custom_hosts())
        return self.hosts.add(hosts, command="llmtap bridge start") if hosts else HostsChange()

    def remove_dns(self) -> HostsChange:
        """Every llmtap line (the enabled flags stay, for the next start)."""
        return self.hosts.remove(None, command="llmtap bridge stop")

    def sync_custom_hosts(self, previous: Iterable[str] = ()) -> HostsChange | None:
        """After a custom host changed: lines for the enabled ones while the listener runs,
        none for hosts no longer enabled."""
        wanted = set(self.custom_hosts())
        gone = [h for h in previous if h not in wanted]
        if gone:
            agent_hosts = {h for a in self._dns_agents() for h in a.hosts}
            gone = [h for h in gone if h not in agent_hosts]
            if gone:
                self.hosts.remove(gone, command="llmtap hosts disable")
        if self.listener_running and wanted:
            return self.hosts.add(wanted, command="llmtap hosts enable")
        return None

    def _dns_agents(self) -> list[Agent]:
        enabled = {s.agent_id for s in store_agents.list_agent_states() if s.dns_enabled}
        return [a for a in self.agents.agents if a.agent_id in enabled and a.hosts]

    # ------------------------------------------------------------------ diagnose, repair

    def diagnose(self, *, server_running: bool) -> dict[str, Any]:
        """Every check of ``GET diagnose``, each failing one with its fix."""
        return diagnose(self, server_running=server_running)

    def repair(self) -> RepairReport:
        """Every llmtap hosts-file line out, the system proxy reverted; DNS marked disabled."""
        report = repair(self.hosts, SystemProxy(self.runner, self.journal))
        if not report["errors"]:
            for state in store_agents.list_agent_states():
                if state.dns_enabled:
                    store_agents.set_agent_state(state.agent_id, dns_enabled=False)
        return report


def _why(agent: Agent) -> str:
    return agent.capture_only_reason or "capture only"


def _change_wire(change: HostsChange) -> dict[str, Any]:
    flush = change.flush
    return {
        "hostsLinesAdded": change.added,
        "hostsLinesRemoved": change.removed,
        "resolverFlushed": bool(flush and flush.flushed),
        "resolverDetail": flush.detail if flush else "",
    }
