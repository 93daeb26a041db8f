"""User-added custom hosts (captured like an agent host)."""

from __future__ import annotations

import re
from datetime import datetime

from router.errors import BadRequest, Conflict, FieldError, NotFound
from router.netaddr import normalize_host
from router.store.db import database, utcnow
from router.store.records import CustomHost
from router.store.tables import CustomHostRow

KINDS = ("llm", "app", "custom")
# A DNS name (labels of letters, digits, hyphens, underscores) or an IPv4 address; no scheme,
# port, path or wildcard: the host becomes a hosts-file line and a certificate SNI.
_HOST = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)


def _record(row: CustomHostRow) -> CustomHost:
    return CustomHost.model_validate(row)  # kind checked against KINDS on write


def _get_row(host: str) -> CustomHostRow:
    return CustomHostRow.found(CustomHostRow.host == normalize_host(host), f"custom host '{host}'")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise BadRequest("invalid custom host", [FieldError("kind", f"one of: {', '.join(KINDS)}")])


def create(
    host: str, *, enabled: bool = True, label: str | None = None, kind: str = "custom"
) -> CustomHost:
    name = normalize_host(host)
    errors: list[FieldError] = []
    if not _HOST.match(name):
        errors.append(FieldError("host", "must be a bare host name like llm.example.com"))
    if kind not in KINDS:
        errors.append(FieldError("kind", f"one of: {', '.join(KINDS)}"))
    if errors:
        raise BadRequest("invalid custom host", errors)
    with database.atomic():
        if CustomHostRow.select().where(CustomHostRow.host == name).exists():
            raise Conflict(f"custom host '{name}' already exists")
        row = CustomHostRow.create(
            host=name, enabled=enabled, label=label, kind=kind, added_at=utcnow()
        )
    return _record(row)


def get(host: str) -> CustomHost:
    return _record(_get_row(host))


def list_all() -> list[CustomHost]:
    return [_record(r) for r in CustomHostRow.select().order_by(CustomHostRow.added_at)]


def update(
    host: str,
    *,
    enabled: bool | None = None,
    label: str | None = None,
    kind: str | None = None,
) -> CustomHost:
    if kind is not None:
        _check_kind(kind)
    with database.atomic():
        row = _get_row(host)
        if enabled is not None:
            row.enabled = enabled
        if label is not None:
            row.label = label or None
        if kind is not None:
            row.kind = kind
        row.save()
    return _record(row)


def touch(host: str, at: datetime | None = None) -> None:
    """Record that traffic to ``host`` was just seen; unknown hosts are ignored."""
    CustomHostRow.update(last_seen_at=at or utcnow()).where(
        CustomHostRow.host == normalize_host(host)
    ).execute()


def delete(host: str) -> None:
    if not CustomHostRow.delete().where(CustomHostRow.host == normalize_host(host)).execute():
        raise NotFound(f"custom host '{host}' not found")
