"""Pydantic records the store hands out and takes in; table rows never leave ``store/``.

Secrets: ``ProviderConnection.api_key`` is held in memory for the providers but is excluded
from every serialisation (``exclude=True``); the public view carries only ``keyPreview``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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
