"""Pydantic records the store hands out and takes in; table rows never leave ``store/``.

Secrets: ``ProviderConnection.api_key`` is held in memory for the providers but is excluded
from every serialisation (``exclude=True``); the public view carries only ``keyPreview``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from router.traffic.masking import mask_json, mask_text

ProviderKind = Literal["openai", "anthropic", "gemini"]
Strategy = Literal[
    "priority", "weighted", "round-robin", "fill-first", "random", "strict-random",
    "least-used", "p2c", "cost-optimized", "latency-optimized", "lkgp", "context-optimized",
]  # fmt: skip
STRATEGIES: tuple[str, ...] = Strategy.__args__  # type: ignore[attr-defined]


class Record(BaseModel):
    """Base: camelCase on the wire, snake_case in code; unknown fields tolerated on read."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", from_attributes=True)


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
    connection_id: str | None = Field(default=None, alias="connectionId")
    combo: str | None = None  # a nested combo by name
    model: str | None = None
    weight: float = 1.0
    priority: int = 0


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
    provider: str  # a connection name/id or "provider/model"
    priority: int = 0
    enabled: bool = True


class FallbackChain(Record):
    model: str
    chain: list[FallbackLink]


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
    cost_usd: float = Field(default=0.0, alias="costUsd")
    latency_ms: float | None = Field(default=None, alias="latencyMs")
    ttft_ms: float | None = Field(default=None, alias="ttftMs")
    source_format: str | None = Field(default=None, alias="sourceFormat")
    target_format: str | None = Field(default=None, alias="targetFormat")
    api_key_id: str | None = Field(default=None, alias="apiKeyId")
    agent: str | None = None
    streamed: bool = False
    dropped_fields: list[str] = Field(default_factory=list, alias="droppedFields")
    error: str | None = None

    # A client can put anything in a model name, a key included ("x/echo-sk-..."): the row is
    # masked before it is stored, like every other place a secret can travel.
    @field_validator("path", "requested_model", "model", "error")
    @classmethod
    def _masked(cls, value: str | None) -> str | None:
        return mask_text(value) if value else value

    @field_validator("attempts")
    @classmethod
    def _masked_attempts(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        masked: list[dict[str, Any]] = mask_json(value)
        return masked


# --------------------------------------------------------------------------- write inputs


class ProviderConnectionCreate(Record):
    """POST /api/providers. ``provider`` is a plain str so the store can reject it with a
    field-level 400 instead of a pydantic error in whatever shape the caller chose."""

    provider: str
    url: str
    name: str | None = None
    api_key: str | None = Field(default=None, alias="apiKey", repr=False)
    is_active: bool = Field(default=True, alias="isActive")
    max_concurrent: int | None = Field(default=None, alias="maxConcurrent")
    priority: int = 0
    models: list[str] = Field(default_factory=list)
    # None: on for api.openai.com, off elsewhere (few OpenAI-compatible servers have it).
    supports_responses: bool | None = Field(default=None, alias="supportsResponses")


class ProviderConnectionPatch(Record):
    """PATCH /api/providers/{id}: only the fields that were sent are applied."""

    provider: str | None = None
    url: str | None = None
    name: str | None = None
    api_key: str | None = Field(default=None, alias="apiKey", repr=False)
    is_active: bool | None = Field(default=None, alias="isActive")
    max_concurrent: int | None = Field(default=None, alias="maxConcurrent")
    priority: int | None = None
    models: list[str] | None = None
    supports_responses: bool | None = Field(default=None, alias="supportsResponses")


class ComboCreate(Record):
    name: str
    model: str | None = None
    strategy: str = "priority"
    nodes: list[ComboNode] = Field(default_factory=list)


class ComboPatch(Record):
    name: str | None = None
    model: str | None = None
    strategy: str | None = None
    nodes: list[ComboNode] | None = None


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
    cost_usd: float = Field(default=0.0, alias="costUsd")


class UsagePoint(UsageBucket):
    """One day of one model or provider (``key``); ``day`` is the UTC date, YYYY-MM-DD."""

    day: str
    key: str


class UsageAnalytics(Record):
    period: Literal["day", "week", "month"]
    since: datetime
    totals: UsageBucket
    by_model: dict[str, UsageBucket] = Field(default_factory=dict, alias="byModel")
    by_provider: dict[str, UsageBucket] = Field(default_factory=dict, alias="byProvider")
    model_series: list[UsagePoint] = Field(default_factory=list, alias="modelSeries")
    provider_series: list[UsagePoint] = Field(default_factory=list, alias="providerSeries")


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


class BypassPattern(Record):
    pattern: str
    source: Literal["default", "user"] = "user"
    created_at: datetime | None = None
