"""AgentBridge persistence: per-agent model mappings and state, and the user bypass patterns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from router.errors import BadRequest, FieldError
from router.store.db import database, utcnow
from router.store.records import AgentMapping, AgentState, BypassPattern
from router.store.tables import AgentMappingRow, AgentStateRow, BypassPatternRow

# --------------------------------------------------------------------------- model mappings


def list_mappings(agent_id: str) -> list[AgentMapping]:
    query = (
        AgentMappingRow.select()
        .where(AgentMappingRow.agent_id == agent_id)
        .order_by(AgentMappingRow.id)
    )
    return [
        AgentMapping(
            agent_id=r.agent_id,
            source_model=r.source_model,
            target_model=r.target_model,
            updated_at=r.updated_at,
        )
        for r in query
    ]


def replace_mappings(
    agent_id: str, mappings: Iterable[tuple[str, str]] | Mapping[str, str]
) -> list[AgentMapping]:
    """Replace the agent's whole set in one transaction: a reader sees the old set or the
    new one, never a mix. Pairs are ``(source, target)``; order is kept."""
    pairs = list(mappings.items()) if isinstance(mappings, Mapping) else list(mappings)
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, (source, target) in enumerate(pairs):
        if not source.strip():
            errors.append(FieldError(f"mappings.{i}.source", "must not be empty"))
        elif source.strip() in seen:
            errors.append(FieldError(f"mappings.{i}.source", f"duplicate source '{source}'"))
        seen.add(source.strip())
        if not target.strip():
            errors.append(FieldError(f"mappings.{i}.target", "must not be empty"))
    if errors:
        raise BadRequest("invalid mappings", errors)
    now = utcnow()
    with database.atomic():
        AgentMappingRow.delete().where(AgentMappingRow.agent_id == agent_id).execute()
        for source, target in pairs:
            AgentMappingRow.create(
                agent_id=agent_id,
                source_model=source.strip(),
                target_model=target.strip(),
                updated_at=now,
            )
    return list_mappings(agent_id)


# --------------------------------------------------------------------------- agent state

_STATE_FIELDS = ("dns_enabled", "cert_trusted", "setup_completed", "last_started_at", "last_error")


def _state(row: AgentStateRow) -> AgentState:
    return AgentState(
        agent_id=row.agent_id,
        dns_enabled=row.dns_enabled,
        cert_trusted=row.cert_trusted,
        setup_completed=row.setup_completed,
        last_started_at=row.last_started_at,
        last_error=row.last_error,
    )


def get_agent_state(agent_id: str) -> AgentState:
    """The stored state, or the all-off default for an agent never touched."""
    row = AgentStateRow.get_or_none(AgentStateRow.agent_id == agent_id)
    return AgentState(agent_id=agent_id) if row is None else _state(row)


def list_agent_states() -> list[AgentState]:
    return [_state(r) for r in AgentStateRow.select().order_by(AgentStateRow.agent_id)]


def set_agent_state(
    agent_id: str,
    *,
    dns_enabled: bool | None = None,
    cert_trusted: bool | None = None,
    setup_completed: bool | None = None,
    last_started_at: datetime | None = None,
    last_error: str | None = None,
    clear_error: bool = False,
) -> AgentState:
    """Partial update: only the given fields change (``clear_error`` sets last_error None)."""
    given = {
        "dns_enabled": dns_enabled,
        "cert_trusted": cert_trusted,
        "setup_completed": setup_completed,
        "last_started_at": last_started_at,
        "last_error": last_error,
    }
    with database.atomic():
        row = AgentStateRow.get_or_none(AgentStateRow.agent_id == agent_id)
        if row is None:
            row = AgentStateRow(agent_id=agent_id)
            created = True
        else:
            created = False
        for name in _STATE_FIELDS:
            if given[name] is not None:
                setattr(row, name, given[name])
        if clear_error:
            row.last_error = None
        row.save(force_insert=created)
    return _state(row)


# --------------------------------------------------------------------------- bypass patterns


def list_bypass() -> list[BypassPattern]:
    """The user's patterns (the defaults live with the bridge, not in the database)."""
    query = BypassPatternRow.select().order_by(
        BypassPatternRow.created_at, BypassPatternRow.pattern
    )
    return [BypassPattern(pattern=r.pattern, source="user", created_at=r.created_at) for r in query]


def replace_bypass(patterns: Iterable[str]) -> list[BypassPattern]:
    """Replace the user set atomically; patterns that stay keep their ``created_at``."""
    wanted: list[str] = []
    errors: list[FieldError] = []
    for i, raw in enumerate(patterns):
        pattern = raw.strip().lower()
        if not pattern or any(c.isspace() for c in pattern) or len(pattern) > 253:
            errors.append(FieldError(f"patterns.{i}", "must be a host glob like *.bank.example"))
        elif pattern not in wanted:
            wanted.append(pattern)
    if errors:
        raise BadRequest("invalid bypass patterns", errors)
    now = utcnow()
    with database.atomic():
        BypassPatternRow.delete().where(BypassPatternRow.pattern.not_in(wanted)).execute()
        existing = {r.pattern for r in BypassPatternRow.select(BypassPatternRow.pattern)}
        for pattern in wanted:
            if pattern not in existing:
                BypassPatternRow.create(pattern=pattern, created_at=now)
    return list_bypass()
