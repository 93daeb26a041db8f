"""Router API keys: only a SHA-256 hash and a preview are stored; the key is shown once."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from router.errors import BadRequest, FieldError, NotFound
from router.store.db import database, new_id, utcnow
from router.store.records import ApiKey, key_preview
from router.store.tables import ApiKeyRow

PREFIX = "sk-llmtap-"


def _hash(full_key: str) -> str:
    # A plain hash is enough: the keys are 256-bit random, so there is nothing to brute-force.
    return hashlib.sha256(full_key.encode()).hexdigest()


def _record(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        label=row.label,
        key_preview=row.key_preview,
        is_active=row.is_active,
        created_at=row.created_at,
    )


def _get_row(key_id: str) -> ApiKeyRow:
    row = ApiKeyRow.get_or_none(ApiKeyRow.id == key_id)
    if row is None:
        raise NotFound(f"api key '{key_id}' not found")
    return row


def _check_label(label: str) -> str:
    if not label.strip():
        raise BadRequest("invalid api key", [FieldError("label", "must not be empty")])
    return label.strip()


def create(label: str) -> tuple[ApiKey, str]:
    """Returns the record and the full key; the caller shows the key once, it is not kept."""
    full_key = PREFIX + secrets.token_urlsafe(32)
    row = ApiKeyRow.create(
        id=new_id(),
        label=_check_label(label),
        key_hash=_hash(full_key),
        key_preview=key_preview(full_key),
        is_active=True,
        created_at=utcnow(),
    )
    return _record(row), full_key


def get(key_id: str) -> ApiKey:
    return _record(_get_row(key_id))


def list_all() -> list[ApiKey]:
    return [_record(r) for r in ApiKeyRow.select().order_by(ApiKeyRow.created_at)]


def update(key_id: str, *, label: str | None = None, is_active: bool | None = None) -> ApiKey:
    with database.atomic():
        row = _get_row(key_id)
        if label is not None:
            row.label = _check_label(label)
        if is_active is not None:
            row.is_active = is_active
        row.save()
    return _record(row)


def delete(key_id: str) -> None:
    if not ApiKeyRow.delete().where(ApiKeyRow.id == key_id).execute():
        raise NotFound(f"api key '{key_id}' not found")


def verify(full_key: str) -> ApiKey | None:
    """The active key matching ``full_key``, else None. The lookup is by hash (an index hit
    reveals nothing about the key); the final comparison is constant-time anyway."""
    if not full_key.startswith(PREFIX):
        return None
    digest = _hash(full_key)
    row = ApiKeyRow.get_or_none(ApiKeyRow.key_hash == digest)
    if row is None or not hmac.compare_digest(row.key_hash, digest) or not row.is_active:
        return None
    return _record(row)
