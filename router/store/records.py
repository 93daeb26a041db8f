"""Pydantic records the store hands out and takes in; table rows never leave ``store/``.

Secrets: ``ProviderConnection.api_key`` is held in memory for the providers but is excluded
from every serialisation (``exclude=True``); the public view carries only ``keyPreview``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    computed_field,
    model_validator,
)

from router import jsonfast
from router.traffic.masking import clean_json, mask_json, mask_text
from router.trusted import build_trusted

ProviderKind = Literal["openai", "anthropic", "gemini"]
Strategy = Literal[
    "priority", "weighted", "round-robin", "fill-first", "random", "strict-random",
    "least-used", "p2c", "cost-optimized", "latency-optimized", "lkgp", "context-optimized",
]  # fmt: skip
STRATEGIES: tuple[str, ...] = Strategy.__args__  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- input limits
# What the API accepts for a name or a number: every limit is one an honest client never
# meets, and each keeps a value from making state that cannot work (a name with "/" can never
# be addressed as a model, a 1e308 cooldown keeps a breaker open for ever, a 40-digit integer
# does not fit in SQLite).

# Connection, combo and alias names are addressed inside model references ("conn/model"):
# no "/", no whitespace, a bounded length.
RefName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@+-]*$")
]
# A model id as an upstream names it ("meta-llama/Llama-3.1-8B", "llama3:8b"): printable, no
# whitespace, bounded.
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\s]+$")]
Priority = Annotated[int, Field(ge=-1_000_000, le=1_000_000)]
Weight = Annotated[float, Field(ge=0, le=1_000_000, allow_inf_nan=False)]
MaxConcurrent = Annotated[int, Field(ge=0, le=100_000)]
MAX_MODELS = 10_000


class Record(BaseModel):
    """Base: camelCase on the wire, snake_case in code; unknown fields tolerated on read."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", from_attributes=True)

    @classmethod
    def trusted(cls, **values: Any) -> Self:
        """An instance from values that already have their fields' types, by field name,
        without validation or validators (:func:`router.trusted.build_trusted`)."""
        return build_trusted(cls, values)


def key_preview(secret: str | None) -> str | None:
    return f"…{secret[-4:]}" if secret and len(secret) >= 8 else ("…" if secret else None)


class ProviderConnection(Record):
    id: str
    provider: ProviderKind
    name: str
    url: str
    api_key: str | None = Field(default=None, exclude=True, repr=False)
    key_preview: str | None = Field(default=None, alias="keyPreview")
    is_active: bool = Field(default=True, alias="isActive")
    max_concurrent: int | None = Field(default=None, alias="maxConcurrent")
    priority: int = 0
    test_status: str = Field(default="unknown", alias="testStatus")
    models: list[str] = Field(default_factory=list)
    created_at: datetime | None = Field(default=None, alias="createdAt")
    # The upstream serves OpenAI's /responses: Responses calls go there untranslated.
    supports_responses: bool = Field(default=False, alias="supportsResponses")


class ComboNode(Record):
    connection_id: str | None = Field(default=None, alias="connectionId", max_length=64)
    combo: RefName | None = None  # a nested combo by name
    model: ModelName | None = None
    weight: Weight = 1.0
    priority: Priority = 0


class Combo(Record):
    id: str
    name: str
    model: str | None = None
    strategy: Strategy = "priority"
    nodes: list[ComboNode] = Field(default_factory=list)
    created_at: datetime | None = Field(default=None, alias="createdAt")


class ModelAlias(Record):
    alias: str
    target: str


class FallbackLink(Record):
    provider: str = Field(min_length=1, max_length=330)  # a connection name/id or "conn/model"
    priority: Priority = 0
    enabled: bool = True


class FallbackChain(Record):
    model: ModelName
    chain: list[FallbackLink] = Field(max_length=1000)


class ApiKey(Record):
    id: str
    label: str
    key_preview: str = Field(alias="keyPreview")
    is_active: bool = Field(default=True, alias="isActive")
    created_at: datetime | None = Field(default=None, alias="createdAt")


class ModelPrice(Record):
    """USD per 1M tokens. ``reasoning`` None means reasoning is billed as output."""

    model: str
    input: float
    output: float
    cached: float | None = None
    cache_creation: float | None = None
    reasoning: float | None = None
    context_window: int | None = Field(default=None, alias="contextWindow")
    max_output: int | None = Field(default=None, alias="maxOutput")


class CallLog(Record):
    id: str
    timestamp: datetime
    path: str
    requested_model: str = Field(alias="requestedModel")
    provider: str | None = None
    connection_id: str | None = Field(default=None, alias="connectionId")
    model: str | None = None
    combo: str | None = None
    attempt: int = 1
    attempts: list[dict[str, Any]] = Field(default_factory=list)
    status: int
    tokens_in: int = Field(default=0, alias="tokensIn")
    tokens_out: int = Field(default=0, alias="tokensOut")
    cache_read_tokens: int = Field(default=0, alias="cacheReadTokens")
    cache_write_tokens: int = Field(default=0, alias="cacheWriteTokens")
    reasoning_tokens: int = Field(default=0, alias="reasoningTokens")
    usage_estimated: bool = Field(default=False, alias="usageEstimated")
    # None: the model has no price (shown as "unknown"; POST /api/pricing adds one).
    cost_usd: float | None = Field(default=0.0, alias="costUsd")
    latency_ms: float | None = Field(default=None, alias="latencyMs")
    ttft_ms: float | None = Field(default=None, alias="ttftMs")
    source_format: str | None = Field(default=None, alias="sourceFormat")
    target_format: str | None = Field(default=None, alias="targetFormat")
    api_key_id: str | None = Field(default=None, alias="apiKeyId")
    agent: str | None = None
    streamed: bool = False
    dropped_fields: list[str] = Field(default_factory=list, alias="droppedFields")
    error: str | None = None

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented pattern
    @property
    def outcome(self) -> Literal["ok", "failed"]:
        """``failed`` for an error status and for a stream that failed after its 200 went out
        (the error then reached the client in-band): what analytics count as errors."""
        return "failed" if self.status >= 400 or self.error is not None else "ok"

    # A client can put anything in a model name, a key included ("x/echo-sk-..."): the row is
    # masked before it is stored, like every other place a secret can travel. One scan of
    # every free-text field together first: usually no rule can fire in any of them.
    @model_validator(mode="after")
    def _masked(self) -> Self:
        return self.mask()

    def mask(self) -> Self:
        """This row with every free-text field masked, in place (a row built with ``trusted``
        skips the validator that calls this)."""
        texts = [self.path, self.requested_model, self.model or "", self.error or ""]
        try:
            if clean_json(jsonfast.dumps([texts, self.attempts])):
                return self
        except (TypeError, ValueError):  # not plain JSON data: masked field by field
            pass
        fields = self.__dict__  # no validate_assignment here: set the masked values directly
        for name in ("path", "requested_model", "model", "error"):
            if fields[name]:
                fields[name] = mask_text(fields[name])
        fields["attempts"] = mask_json(self.attempts)
        return self


# --------------------------------------------------------------------------- write inputs


class ProviderConnectionCreate(Record):
    """POST /api/providers. ``provider`` is a plain str so the store can reject it with a
    field-level 400 instead of a pydantic error in whatever shape the caller chose."""

    provider: str = Field(max_length=32)
    url: str = Field(max_length=2048)
    name: RefName | None = None
    api_key: str | None = Field(default=None, alias="apiKey", repr=False, max_length=8192)
    is_active: bool = Field(default=True, alias="isActive")
    max_concurrent: MaxConcurrent | None = Field(default=None, alias="maxConcurrent")
    priority: Priority = 0
    models: list[ModelName] = Field(default_factory=list, max_length=MAX_MODELS)
    # None: on for api.openai.com, off elsewhere (few OpenAI-compatible servers have it).
    supports_responses: bool | None = Field(default=None, alias="supportsResponses")


class ProviderConnectionPatch(Record):
    """PATCH /api/providers/{id}: only the fields that were sent are applied."""

    provider: str | None = Field(default=None, max_length=32)
    url: str | None = Field(default=None, max_length=2048)
    name: RefName | None = None
    api_key: str | None = Field(default=None, alias="apiKey", repr=False, max_length=8192)
    is_active: bool | None = Field(default=None, alias="isActive")
    max_concurrent: MaxConcurrent | None = Field(default=None, alias="maxConcurrent")
    priority: Priority | None = None
    models: list[ModelName] | None = Field(default=None, max_length=MAX_MODELS)
    supports_responses: bool | None = Field(default=None, alias="supportsResponses")


class ComboCreate(Record):
    name: RefName
    model: ModelName | None = None
    strategy: str = Field(default="priority", max_length=32)
    nodes: list[ComboNode] = Field(default_factory=list, max_length=1000)


class ComboPatch(Record):
    name: RefName | None = None
    model: ModelName | None = None
    strategy: str | None = Field(default=None, max_length=32)
    nodes: list[ComboNode] | None = Field(default=None, max_length=1000)


class ProviderModels(Record):
    """What a connection's model-list endpoint reported, and when (the models cache)."""

    connection_id: str = Field(alias="connectionId")
    models: list[str]
    fetched_at: datetime = Field(alias="fetchedAt")


# --------------------------------------------------------------------------- usage analytics


class UsageBucket(Record):
    requests: int = 0
    errors: int = 0
    tokens_in: int = Field(default=0, alias="tokensIn")
    tokens_out: int = Field(default=0, alias="tokensOut")
    cache_read_tokens: int = Field(default=0, alias="cacheReadTokens")
    cache_write_tokens: int = Field(default=0, alias="cacheWriteTokens")
    reasoning_tokens: int = Field(default=0, alias="reasoningTokens")
    # The cost of the priced calls; ``unpriced`` counts the calls whose model has no price, so
    # a total that leaves some out says so instead of being silently low.
    cost_usd: float = Field(default=0.0, alias="costUsd")
    unpriced: int = 0


class UsagePoint(UsageBucket):
    """One bucket of one model, provider, agent or combo (``key``): ``day`` is the UTC date,
    YYYY-MM-DD; ``bucket`` the bucket's start (the day, or "YYYY-MM-DDTHH:00Z" by the hour)."""

    day: str
    bucket: str = ""
    key: str


class UsageAnalytics(Record):
    period: Literal["day", "week", "month"]
    since: datetime
    totals: UsageBucket
    by_model: dict[str, UsageBucket] = Field(default_factory=dict, alias="byModel")
    by_provider: dict[str, UsageBucket] = Field(default_factory=dict, alias="byProvider")
    model_series: list[UsagePoint] = Field(default_factory=list, alias="modelSeries")
    provider_series: list[UsagePoint] = Field(default_factory=list, alias="providerSeries")
    # "direct" for calls that came to /v1 without an agent; combos only for calls a combo served.
    by_agent: dict[str, UsageBucket] = Field(default_factory=dict, alias="byAgent")
    by_combo: dict[str, UsageBucket] = Field(default_factory=dict, alias="byCombo")
    agent_series: list[UsagePoint] = Field(default_factory=list, alias="agentSeries")
    combo_series: list[UsagePoint] = Field(default_factory=list, alias="comboSeries")


# --------------------------------------------------------------------------- inspector / bridge
# These keep the contract's snake_case field names on the wire (InspectorSession, CustomHost,
# AgentState, AgentBridgeMappingRow, AgentBridgeBypassRow).

SessionProfile = Literal["llm", "custom", "all"]
HostKind = Literal["llm", "app", "custom"]


class Session(Record):
    id: str
    name: str | None = None
    started_at: datetime
    ended_at: datetime | None = None
    request_count: int = 0
    profile: SessionProfile | None = None

    @property
    def active(self) -> bool:
        return self.ended_at is None


class CustomHost(Record):
    host: str
    enabled: bool = True
    label: str | None = None
    kind: HostKind = "custom"
    added_at: datetime
    last_seen_at: datetime | None = None


class AgentMapping(Record):
    agent_id: str
    source_model: str
    target_model: str
    # none|low|medium|high|xhigh, or None to leave the agent's own effort as it is
    effort: str | None = None
    updated_at: datetime


class AgentState(Record):
    agent_id: str
    dns_enabled: bool = False
    cert_trusted: bool = False
    setup_completed: bool = False
    last_started_at: datetime | None = None
    last_error: str | None = None
    route_all: bool = False  # divert every chat call, mapped or not (model unchanged)


class DetectedModel(Record):
    """A model an agent was seen asking for in captured traffic, with how often."""

    agent_id: str
    model: str
    count: int
    first_seen: datetime
    last_seen: datetime


class BypassPattern(Record):
    pattern: str
    source: Literal["default", "user"] = "user"
    created_at: datetime | None = None


# --------------------------------------------------------------------------- shared state


@dataclass(slots=True, frozen=True)
class RemoteBreaker:
    """What the instances sharing a database know about one connection (wall-clock times;
    0 means none)."""

    open_until: float = 0.0  # > 0: opened by some instance; after it, a probe may go
    cooldown_s: float = 0.0
    probe_until: float = 0.0  # an instance holds the probe until then (or its outcome)
    rate_limited_until: float = 0.0  # the whole connection
    model_limited_until: dict[str, float] = field(default_factory=dict)

    def limited_until(self, model: str | None) -> float:
        until = self.rate_limited_until
        if model is not None:
            until = max(until, self.model_limited_until.get(model, 0.0))
        return until
