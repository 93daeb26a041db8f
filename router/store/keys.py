"""Router API keys: only a SHA-256 hash and a preview are stored; the key is shown once.

:func:`verify` runs on every router call, so the active keys it found are kept in memory (by
hash): a known key costs no database round trip. The copy is dropped whenever keys change:
here for a change made by this process, and by :func:`forget` when another instance sharing
the database announces a change (store/shared.py's feed, within its 1 s). Misses are not
kept, so a key created elsewhere works at once and random keys cannot fill memory.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from router.errors import BadRequest, FieldError, NotFound
from router.store.db import database, new_id, utcnow
from router.store.records import ApiKey, key_preview
from router.store.tables import ApiKeyRow

PREFIX = "sk-llmtap-"
CACHED_KEYS = 1024  # active keys kept; more than a team has, bounded all the same

_verified: dict[str, ApiKey] = {}
_verified_in: list[object] = [None]  # the database those keys were found in


def forget() -> None:
    """Drop the verified keys kept in memory (keys changed, here or on another instance)."""
    _verified.clear()


def _hash(full_key: str) -> str:
    # A plain hash is enough: the keys are 256-bit random, so there is nothing to brute-force.
    return hashlib.sha256(full_key.encode()).hexdigest()


def _record(row: ApiKeyRow) -> ApiKey:
    return ApiKey.model_validate(row)  # by attribute; the hash stays behind


def _get_row(key_id: str) -> ApiKeyRow:
    return ApiKeyRow.found(ApiKeyRow.id == key_id, f"api key '{key_id}'")


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
    forget()
    return _record(row)


def delete(key_id: str) -> None:
    forget()
    if not ApiKeyRow.delete().where(ApiKeyRow.id == key_id).execute():
        raise NotFound(f"api key '{key_id}' not found")


def verify(full_key: str) -> ApiKey | None:
    """The active key matching ``full_key``, else None. The lookup is by hash (an index hit
    reveals nothing about the key); the final comparison is constant-time anyway."""
    if not full_key.startswith(PREFIX):
        return None
    digest = _hash(full_key)
    if _verified_in[0] is not database.obj:  # another database was opened (tests, db copy)
        forget()
        _verified_in[0] = database.obj
    known = _verified.get(digest)
    if known is not None:
        return known
    row = ApiKeyRow.get_or_none(ApiKeyRow.key_hash == digest)
    if row is None or not hmac.compare_digest(row.key_hash, digest) or not row.is_active:
        return None
    if len(_verified) >= CACHED_KEYS:
        _verified.clear()  # rare (a team has fewer keys): start over rather than track use
    found = _verified[digest] = _record(row)
    return found
