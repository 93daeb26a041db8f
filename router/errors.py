"""The core's exception tree; the web edge maps each to an HTTP status and the error envelope."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError


@dataclass(slots=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class LlmtapError(Exception):
    """Base of every error the core raises on purpose. ``status``/``type`` drive the envelope."""

    status = 500
    type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Response headers the client gets with the error (Retry-After, x-ratelimit-*).
        self.headers: dict[str, str] = {}
        if code is not None:
            self.code = code


class BadRequest(LlmtapError):
    status = 400
    type = "invalid_request_error"

    def __init__(
        self, message: str, details: list[FieldError] | None = None, *, code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.details = details or []


class Unauthorized(LlmtapError):
    status = 401
    type = "authentication_error"


class Forbidden(LlmtapError):
    status = 403
    type = "permission_error"


class NotFound(LlmtapError):
    status = 404
    type = "not_found_error"


class ModelNotFound(NotFound):
    code = "model_not_found"

    def __init__(self, model: str, suggestions: list[str] | None = None) -> None:
        hint = f" (did you mean: {', '.join(suggestions)})" if suggestions else ""
        super().__init__(f"model '{model}' is not available{hint}")
        self.model = model
        self.suggestions = suggestions or []


class ServiceUnavailable(LlmtapError):
    """A part of the process that is not running (e.g. capture without mitmproxy)."""

    status = 503
    type = "service_unavailable"


class NotImplementedYet(LlmtapError):
    """An action this build or this system cannot do; the message names what is missing."""

    status = 501
    type = "not_implemented"
    code = "not_implemented"


class Conflict(LlmtapError):
    status = 409
    type = "conflict_error"


class PayloadTooLarge(LlmtapError):
    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class UnsupportedMediaType(LlmtapError):
    status = 415
    type = "invalid_request_error"
    code = "unsupported_media_type"


UpstreamKind = Literal[
    "auth", "rate_limit", "context_length", "bad_request", "not_found", "server", "timeout",
    "connection", "protocol",
]  # fmt: skip


RateLimitScope = Literal["model", "connection"]


@dataclass(slots=True)
class Attempt:
    """One try of one plan step, for headers, call logs and error messages."""

    connection_id: str
    provider: str
    model: str
    status: int | None = None
    error: str | None = None
    latency_ms: float | None = None
    skipped: str | None = None
    retry_after: float | None = None  # seconds until this step may be tried again, if known


class UpstreamError(LlmtapError):
    """An upstream answered badly or not at all. ``kind`` decides fallback and breakers."""

    type = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        kind: UpstreamKind,
        status: int | None = None,
        retry_after: float | None = None,
        provider: str | None = None,
        body: str | None = None,
        headers: dict[str, str] | None = None,
        rate_limit_scope: RateLimitScope = "model",
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.upstream_status = status
        self.retry_after = retry_after
        self.provider = provider
        self.body = body
        self.headers = dict(headers or {})
        # What a 429 limits: the model on this connection (the usual per-model rate limits)
        # or the whole connection (an exhausted account quota).
        self.rate_limit_scope: RateLimitScope = rate_limit_scope
        self.status = _STATUS_FOR_KIND.get(kind, 502) if status is None else _client_status(status)

    @property
    def retryable(self) -> bool:
        """Whether the next plan step may be tried (router.md "Fallback and resilience")."""
        # "protocol": the upstream's reply was broken (not JSON, garbage, an error inside a
        # 200), which says nothing about the request: another upstream may answer it.
        return (
            self.kind
            in ("rate_limit", "server", "timeout", "connection", "context_length", "protocol")
            or self.upstream_status == 408
        )

    @property
    def breaker_worthy(self) -> bool:
        return self.kind in ("timeout", "connection", "server") or self.upstream_status == 408


_STATUS_FOR_KIND: dict[str, int] = {
    "timeout": 504,
    "connection": 502,
    "protocol": 502,
    "server": 502,
    "rate_limit": 429,
    "auth": 502,
    "bad_request": 400,
    "context_length": 400,
    "not_found": 404,
}


def _client_status(upstream: int) -> int:
    # 4xx caused by the request are the client's to see; upstream auth trouble is ours (502).
    if upstream in (401, 403):
        return 502
    if 400 <= upstream < 500:
        return upstream
    return 502


class AllAttemptsFailed(LlmtapError):
    """Every step of the plan failed; carries the attempts and the last error."""

    type = "upstream_error"

    def __init__(self, attempts: list[Attempt], last: LlmtapError | None) -> None:
        detail = "; ".join(
            f"{a.provider}/{a.model}: {a.error or a.skipped or a.status}" for a in attempts
        )
        tried = [a for a in attempts if a.skipped is None]
        if len(tried) == 1 and len(attempts) == 1 and last is not None:
            message = last.message  # one try: its own words say it best
        elif attempts:
            message = f"all upstream attempts failed ({detail})"
        else:
            message = "no upstream connection is available for this model"
        super().__init__(message)
        self.attempts = attempts
        self.last = last
        self.status = last.status if isinstance(last, UpstreamError) and len(attempts) == 1 else 502
        if isinstance(last, UpstreamError) and last.kind in ("bad_request", "context_length"):
            self.status = last.status
        if isinstance(last, UpstreamError) and self.status == last.status:
            self.headers = dict(last.headers)  # one upstream's answer: its rate-limit headers
        if attempts and all(a.status == 429 or a.skipped == "rate_limited" for a in attempts):
            # Every step is rate limited: the client should wait, not treat it as an outage.
            self.status = 429
            self.code = "rate_limited"
            waits = [a.retry_after for a in attempts if a.retry_after is not None]
            if waits and not any(k.lower() == "retry-after" for k in self.headers):
                self.headers["Retry-After"] = str(max(1, math.ceil(min(waits))))


def validation_error(exc: ValidationError, message: str) -> BadRequest:
    """A pydantic ValidationError as a BadRequest with field-level details: the one mapping
    every request body, settings layer and ingested record goes through."""
    details = [
        FieldError(".".join(str(p) for p in err["loc"]) or "body", err["msg"])
        for err in exc.errors()
    ]
    return BadRequest(message, details)
