"""The InterceptedRequest record (one per captured call, camelCase on the wire) and its filters."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PrivateAttr
from pydantic.alias_generators import to_camel

from router.errors import BadRequest, FieldError
from router.trusted import build_trusted

Source = Literal["agent-bridge", "custom-host", "http-proxy", "system-proxy", "router"]
DetectedKind = Literal["llm", "app", "unknown"]
Status = int | Literal["in-flight", "error"]
Profile = Literal["llm", "custom", "all"]
StatusClass = Literal["2xx", "3xx", "4xx", "5xx", "error"]


class _Wire(BaseModel):
    """snake_case in code, camelCase on the wire; both accepted on input, unknown keys ignored
    (records also arrive from the ingest endpoint and from older sessions).

    ``masked`` is the masking provenance: True only on an object that
    :mod:`router.traffic.masking` produced. It is a private attribute, so no input (the ingest
    endpoint, a stored session, a JSONL import) can set it, and any change of a field (an
    assignment, a ``model_copy`` with updates) clears it: new content has not been masked.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="ignore",
    )
    _masked: bool = PrivateAttr(default=False)

    @property
    def masked(self) -> bool:
        # Read straight from pydantic's private store: ``self._masked`` goes through
        # BaseModel.__getattr__ (Python), and every record's provenance is asked for.
        private = self.__pydantic_private__
        return bool(private and private.get("_masked"))

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name[:1] != "_":
            super().__setattr__("_masked", False)

    def __eq__(self, other: object) -> bool:
        # Provenance is not content: a masked record equals the same record read back.
        if not isinstance(other, BaseModel):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable, like every pydantic model

    @classmethod
    def trusted(cls, **values: Any) -> Self:
        """An instance from values that already have their fields' types (the capture path's
        builders), without validation (:func:`router.trusted.build_trusted`), not masked."""
        return build_trusted(cls, values, {"_masked": False})

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copy = super().model_copy(update=update, deep=deep)
        if update:
            object.__getattribute__(copy, "__pydantic_private__")["_masked"] = False
        return copy


class LlmInfo(_Wire):
    """What the inspector understood of an LLM call. ``response`` is the merged response in the
    call's own wire format; ``conversation`` is ``{request: [Turn], response: [Turn],
    contextKey}`` (see :mod:`router.traffic.merge`). Tokens follow ``ir.Usage`` semantics."""

    provider: str | None = None
    # The call's wire format (router.formats); ``apiKind`` is the inspector spec's JSON name.
    format: str | None = Field(
        default=None,
        validation_alias=AliasChoices("apiKind", "api_kind", "format"),
        serialization_alias="apiKind",
    )
    model: str | None = None
    streamed: bool = False
    tokens_in: int = 0
    tokens_out: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float | None = None
    usage_estimated: bool = False
    incomplete: bool = False  # the stream never reached its end (cut or ended by an error)
    response: dict[str, Any] | None = None
    conversation: dict[str, Any] | None = None


class UpstreamRequest(_Wire):
    """The request the router actually sent upstream for a router or diverted call, after
    translation to the upstream's format and model mapping (masked like the client's)."""

    method: str = "POST"
    url: str
    headers: dict[str, str] = {}
    body: str | None = None
    format: str | None = None  # the upstream's wire format
    provider: str | None = None  # the connection's name


class InterceptedRequest(_Wire):
    """One captured call, pushed once as in-flight and then updated in place (same ``id``).
    Headers and bodies are always masked (:func:`router.traffic.masking.mask_record`)."""

    id: str
    source: Source
    agent: str | None = None
    timestamp: datetime
    method: str
    scheme: str = "https"
    host: str
    port: int = 443
    path: str
    request_headers: dict[str, str] = {}
    request_body: str | None = None
    request_size: int = 0
    response_headers: dict[str, str] = {}
    response_body: str | None = None
    response_size: int = 0
    status: Status = "in-flight"
    proxy_latency_ms: float | None = None
    upstream_latency_ms: float | None = None
    ttfb_ms: float | None = None
    total_latency_ms: float | None = None
    error: str | None = None
    source_model: str | None = None
    mapped_model: str | None = None
    detected_kind: DetectedKind = "unknown"
    context_key: str | None = None
    llm: LlmInfo | None = None
    annotation: str | None = None
    session_id: str | None = None
    note: str | None = None
    pid: int | None = None
    process_name: str | None = None
    body_truncated: bool | None = None
    upstream_request: UpstreamRequest | None = None

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict the API, WebSocket and JSONL carry."""
        return self.model_dump(mode="json", by_alias=True)


# --------------------------------------------------------------------------- filters

_PROFILES: tuple[str, ...] = ("llm", "custom", "all")
_STATUS_CLASSES: tuple[str, ...] = ("2xx", "3xx", "4xx", "5xx", "error")


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """The list/export query of the inspector API. Every field is optional; all given ones must
    match. ``profile``: ``llm`` = detected LLM calls, ``custom`` = calls to user-added custom
    hosts (source ``custom-host``), ``all`` = everything. ``host`` matches as a
    case-insensitive substring (like a search box); the other fields match exactly. An
    in-flight record matches no ``status`` class."""

    profile: Profile = "all"
    host: str | None = None
    agent: str | None = None
    status: StatusClass | None = None
    source: str | None = None
    session_id: str | None = None
    context_key: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> RecordFilter:
        """Build from URL query parameters (camelCase names); bad values raise BadRequest."""
        profile = query.get("profile") or "all"
        if profile not in _PROFILES:
            raise BadRequest(
                "'profile' must be one of llm, custom, all",
                [FieldError("profile", "expected llm, custom or all")],
            )
        status = query.get("status") or None
        if status is not None and status not in _STATUS_CLASSES:
            raise BadRequest(
                "'status' must be one of 2xx, 3xx, 4xx, 5xx, error",
                [FieldError("status", "expected 2xx, 3xx, 4xx, 5xx or error")],
            )
        return cls(
            profile=profile,  # type: ignore[arg-type]  # checked against _PROFILES above
            host=query.get("host") or None,
            agent=query.get("agent") or None,
            status=status,  # type: ignore[arg-type]  # checked against _STATUS_CLASSES above
            source=query.get("source") or None,
            session_id=query.get("sessionId") or None,
            context_key=query.get("contextKey") or None,
        )

    def matches(self, record: InterceptedRequest) -> bool:
        if self.profile == "llm" and record.detected_kind != "llm":
            return False
        if self.profile == "custom" and record.source != "custom-host":
            return False
        if self.host is not None and self.host.lower() not in record.host.lower():
            return False
        if self.agent is not None and record.agent != self.agent:
            return False
        if self.source is not None and record.source != self.source:
            return False
        if self.session_id is not None and record.session_id != self.session_id:
            return False
        if self.context_key is not None and record.context_key != self.context_key:
            return False
        return self.status is None or record_status_class(record) == self.status


def record_status_class(record: InterceptedRequest) -> StatusClass | None:
    """The status class a user filters by: ``error`` also for a call whose client got a 2xx
    and then lost the stream (cut, or ended by an error event), which ``status`` alone (the
    HTTP status sent before the failure) shows as a success."""
    failed = record.error or (record.llm is not None and record.llm.incomplete)
    if failed and isinstance(record.status, int) and record.status < 400:
        return "error"
    return status_class(record.status)


def status_class(status: Status) -> StatusClass | None:
    """``2xx``.. ``5xx`` for a final HTTP status, ``error`` for a failed call, None otherwise
    (in-flight, 1xx)."""
    if status == "error":
        return "error"
    if isinstance(status, int) and 200 <= status <= 599:
        return f"{status // 100}xx"  # type: ignore[return-value]  # 2..5 gives a StatusClass
    return None


def filter_records(
    records: Iterable[InterceptedRequest], flt: RecordFilter | None = None
) -> Iterator[InterceptedRequest]:
    """The records that match ``flt`` (all when None), in the order given."""
    for record in records:
        if flt is None or flt.matches(record):
            yield record
