"""Request-body validation against pydantic models, as field-level 400s."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from router.settings import validation_error


def parse_body[M: BaseModel](model: type[M], data: dict[str, Any]) -> M:
    """Validate ``data`` strictly (unknown fields and wrong types are 400 with details)."""
    try:
        return model.model_validate(data, strict=False, extra="forbid")
    except ValidationError as exc:
        raise validation_error(exc, "invalid request body") from exc
