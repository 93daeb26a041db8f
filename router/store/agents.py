"""AgentBridge persistence: per-agent model mappings and state, and the user bypass patterns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import get_args

from router.errors import BadRequest, FieldError
from router.ir import Effort
from router.store.db import database, utcnow
from router.store.records import AgentMapping, AgentState, BypassPattern, DetectedModel
from router.store.tables import AgentMappingRow, AgentStateRow, BypassPatternRow, DetectedModelRow

# --------------------------------------------------------------------------- model mappings


def list_mappings(agent_id: str) -> list[AgentMapping]:
    query = (
        AgentMappingRow.select()
        .where(AgentMappingRow.agent_id == agent_id)
        .order_by(AgentMappingRow.id)
    )
    return [AgentMapping.model_validate(r) for r in query]


# Spelled by users for the top effort; the IR has one name for it.
EFFORT_ALIASES = {"extra": "xhigh", "max": "xhigh"}
EFFORTS: tuple[str, ...] = get_args(Effort)


def normalize_effort(value: str | None) -> str | None:
    """An effort override as stored: one of the IR's efforts, or None for no override.
    Raises ValueError naming the allowed values."""
    if value is None or not value.strip():
        return None
    v = value.strip().lower()
    v = EFFORT_ALIASES.get(v, v)
    if v not in EFFORTS:
        raise ValueError(f"must be one of {', '.join(EFFORTS)} (or extra/max for xhigh)")
    return v


MappingSpec = tuple[str, str] | tuple[str, str, str | None]


def replace_mappings(
    agent_id: str, mappings: Iterable[MappingSpec] | Mapping[str, str]
) -> list[AgentMapping]:
    """Replace the agent's whole set in one transaction: a reader sees the old set or the
    new one, never a mix. Items are ``(source, target)`` or ``(source, target, effort)``;
    order is kept."""
    items: list[Sequence[str | None]] = (
        [(k, v) for k, v in mappings.items()] if isinstance(mappings, Mapping) else list(mappings)
    )
    errors: list[FieldError] = []
    seen: set[str] = set()
    rows: list[tuple[str, str, str | None]] = []
    for i, item in enumerate(items):
        source, target = str(item[0] or ""), str(item[1] or "")
        effort = item[2] if len(item) > 2 else None
        if not source.strip():
            errors.append(FieldError(f"mappings.{i}.source", "must not be empty"))
        elif source.strip() in seen:
            errors.append(FieldError(f"mappings.{i}.source", f"duplicate source '{source}'"))
        seen.add(source.strip())
        if not target.strip():
            errors.append(FieldError(f"mappings.{i}.target", "must not be empty"))
        try:
            effort = normalize_effort(effort)
        except ValueError as exc:
            errors.append(FieldError(f"mappings.{i}.effort", str(exc)))
        rows.append((source.strip(), target.strip(), effort))
    if errors:
        raise BadRequest("invalid mappings", errors)
    now = utcnow()
    with database.atomic():
        AgentMappingRow.delete().where(AgentMappingRow.agent_id == agent_id).execute()
        for source, target, effort in rows:
            AgentMappingRow.create(
                agent_id=agent_id,
                source_model=source,
                target_model=target,
                effort=effort,
                updated_at=now,
            )
    return list_mappings(agent_id)


def find_mapping(agent_id: str, source_model: str | None) -> AgentMapping | None:
    """The mapping that applies to ``source_model``: the exact source, then ``*``, else None."""
    rows = {m.source_model: m for m in list_mappings(agent_id)}
    if source_model and source_model in rows:
        return rows[source_model]
    return rows.get("*")


# --------------------------------------------------------------------------- detected models


def add_detected_models(
    counts: Mapping[tuple[str, str], int], seen_at: datetime | None = None
) -> None:
    """Add ``{(agent_id, model): n}`` sightings in one transaction (the capture path batches
    them; a model first seen keeps its ``first_seen``)."""
    if not counts:
        return
    now = seen_at or utcnow()
    with database.atomic():
        for (agent_id, model), n in counts.items():
            if n <= 0 or not agent_id or not model:
                continue
            model = model[:512]
            updated = (
                DetectedModelRow.update(count=DetectedModelRow.count + n, last_seen=now)
                .where((DetectedModelRow.agent_id == agent_id) & (DetectedModelRow.model == model))
                .execute()
            )
            if not updated:
                DetectedModelRow.insert(
                    agent_id=agent_id, model=model, count=n, first_seen=now, last_seen=now
                ).execute()


def list_detected_models(agent_id: str) -> list[DetectedModel]:
    """The models the agent was seen asking for, most frequent first."""
    query = (
        DetectedModelRow.select()
        .where(DetectedModelRow.agent_id == agent_id)
        .order_by(DetectedModelRow.count.desc(), DetectedModelRow.model)
    )
    return [DetectedModel.model_validate(r) for r in query]


# --------------------------------------------------------------------------- agent state

_STATE_FIELDS = (
    "dns_enabled",
    "cert_trusted",
    "setup_completed",
    "last_started_at",
    "last_error",
    "route_all",
)


def _state(row: AgentStateRow) -> AgentState:
    return AgentState.model_validate(row)


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
    route_all: bool | None = None,
    clear_error: bool = False,
) -> AgentState:
    """Partial update: only the given fields change (``clear_error`` sets last_error None)."""
    given = {
        "dns_enabled": dns_enabled,
        "cert_trusted": cert_trusted,
        "setup_completed": setup_completed,
        "last_started_at": last_started_at,
        "last_error": last_error,
        "route_all": route_all,
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
