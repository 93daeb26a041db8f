"""Provider connections and their cached model lists."""

from __future__ import annotations

from datetime import datetime

import peewee

from router.errors import BadRequest, Conflict, FieldError, NotFound
from router.providers.base import normalize_url, responses_by_default
from router.store.db import database, new_id, upsert, utcnow
from router.store.records import (
    ProviderConnection,
    ProviderConnectionCreate,
    ProviderConnectionPatch,
    ProviderKind,
    ProviderModels,
    key_preview,
)
from router.store.tables import ProviderConnectionRow, ProviderModelsRow

KINDS: tuple[str, ...] = ProviderKind.__args__  # type: ignore[attr-defined]  # Literal args


def _record(row: ProviderConnectionRow) -> ProviderConnection:
    return ProviderConnection(
        id=row.id,
        provider=row.provider,
        name=row.name,
        url=row.url,
        api_key=row.api_key,
        key_preview=key_preview(row.api_key),
        is_active=row.is_active,
        max_concurrent=row.max_concurrent,
        priority=row.priority,
        test_status=row.test_status,
        models=list(row.models or []),
        created_at=row.created_at,
        supports_responses=bool(row.supports_responses),
    )


def _validate(fields: dict[str, object], kind: str) -> list[FieldError]:
    """Field errors; on success ``fields["url"]`` holds the normalised base URL (for ``kind``)."""
    errors: list[FieldError] = []
    if kind not in KINDS:
        errors.append(FieldError("provider", f"must be one of: {', '.join(KINDS)}"))
    if "url" in fields:
        url = fields["url"]
        try:
            # With an unknown kind only the URL's shape is checked (nothing is written then).
            shape = kind if kind in KINDS else KINDS[0]
            fields["url"] = normalize_url(shape, url if isinstance(url, str) else "")
        except BadRequest as exc:
            errors += exc.details
    if "name" in fields and not (isinstance(fields["name"], str) and fields["name"].strip()):
        errors.append(FieldError("name", "must not be empty"))
    if fields.get("supports_responses") and kind != "openai":
        errors.append(
            FieldError("supportsResponses", "only an openai connection serves /responses")
        )
    mc = fields.get("max_concurrent")
    if isinstance(mc, int) and mc < 0:
        errors.append(FieldError("maxConcurrent", "must be >= 0"))
    return errors


def _free_name(base: str) -> str:
    taken = {r.name for r in ProviderConnectionRow.select(ProviderConnectionRow.name)}
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def _get_row(connection_id: str) -> ProviderConnectionRow:
    return ProviderConnectionRow.found(
        ProviderConnectionRow.id == connection_id, f"provider connection '{connection_id}'"
    )


def create(data: ProviderConnectionCreate) -> ProviderConnection:
    fields = data.model_dump(exclude_none=True)
    if errors := _validate(fields, data.provider):
        raise BadRequest("invalid provider connection", errors)
    with database.atomic():
        name = data.name.strip() if data.name else _free_name(data.provider)
        row = ProviderConnectionRow(
            id=new_id(),
            provider=data.provider,
            name=name,
            url=fields["url"],
            api_key=data.api_key or None,
            is_active=data.is_active,
            max_concurrent=data.max_concurrent,
            priority=data.priority,
            models=list(data.models),
            created_at=utcnow(),
            supports_responses=(
                responses_by_default(data.provider, fields["url"])
                if data.supports_responses is None
                else data.supports_responses
            ),
        )
        try:
            row.save(force_insert=True)
        except peewee.IntegrityError as exc:
            raise Conflict(f"a provider connection named '{name}' already exists") from exc
    return _record(row)


def get(connection_id: str) -> ProviderConnection:
    return _record(_get_row(connection_id))


def list_all() -> list[ProviderConnection]:
    rows = ProviderConnectionRow.select().order_by(
        ProviderConnectionRow.priority, ProviderConnectionRow.created_at
    )
    return [_record(r) for r in rows]


def update(connection_id: str, patch: ProviderConnectionPatch) -> ProviderConnection:
    fields = patch.model_dump(exclude_unset=True)
    # None means "not given", except for maxConcurrent where it means "no limit".
    fields = {k: v for k, v in fields.items() if v is not None or k == "max_concurrent"}
    with database.atomic():
        row = _get_row(connection_id)
        kind = str(fields.get("provider", row.provider))
        if "provider" in fields and "url" not in fields:
            fields["url"] = row.url  # the base URL follows the kind's shape
        if errors := _validate(fields, kind):
            raise BadRequest("invalid provider connection", errors)
        for key, value in fields.items():
            if key == "name":
                value = value.strip()
            elif key == "api_key":
                value = value or None  # "" clears the key
            setattr(row, key, value)
        try:
            row.save()
        except peewee.IntegrityError as exc:
            raise Conflict(f"a provider connection named '{row.name}' already exists") from exc
    return _record(row)


def delete(connection_id: str) -> None:
    deleted = (
        ProviderConnectionRow.delete().where(ProviderConnectionRow.id == connection_id).execute()
    )
    if not deleted:
        raise NotFound(f"provider connection '{connection_id}' not found")


def set_test_status(connection_id: str, status: str) -> ProviderConnection:
    with database.atomic():
        row = _get_row(connection_id)
        row.test_status = status
        row.save()
    return _record(row)


def set_models(connection_id: str, models: list[str]) -> ProviderConnection:
    """The models this connection serves (used by bare-model resolution)."""
    with database.atomic():
        row = _get_row(connection_id)
        row.models = list(dict.fromkeys(models))
        row.save()
    return _record(row)


def set_cached_models(
    connection_id: str, models: list[str], at: datetime | None = None
) -> ProviderModels:
    """Remember what the upstream's model-list endpoint reported."""
    fetched_at = at or utcnow()
    with database.atomic():
        _get_row(connection_id)
        upsert(
            ProviderModelsRow, connection=connection_id, models=list(models), fetched_at=fetched_at
        )
    return ProviderModels(connection_id=connection_id, models=list(models), fetched_at=fetched_at)


def get_cached_models(connection_id: str) -> ProviderModels | None:
    row = ProviderModelsRow.get_or_none(ProviderModelsRow.connection == connection_id)
    if row is None or row.fetched_at is None:
        return None
    return ProviderModels(
        connection_id=connection_id, models=list(row.models), fetched_at=row.fetched_at
    )
