"""peewee table models; private to ``store/`` (callers only ever see records.py records).

The schema itself is created by migrations.py in plain SQL; these models must match it, which
a test checks column by column.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self

import peewee

from router import jsonfast
from router.errors import NotFound
from router.store.db import database

# peewee's stubs make Field generic in the value type; the runtime class is not subscriptable.
if TYPE_CHECKING:
    _DateTimeBase = peewee.Field[datetime | None]
    _JsonBase = peewee.Field[Any]
else:
    _DateTimeBase = _JsonBase = peewee.Field


class UtcDateTimeField(_DateTimeBase):
    """ISO 8601 text in UTC with a fixed width, so text order is time order and
    ``substr(col, 1, 10)`` is the UTC day. Naive datetimes are taken as UTC."""

    field_type = "TEXT"

    def db_value(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def python_value(self, value: str | None) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)


class JsonField(_JsonBase):
    """JSON text; values are validated into records on the way out, hence ``Any`` here."""

    field_type = "TEXT"

    def db_value(self, value: Any) -> str | None:
        return None if value is None else jsonfast.dumps_str(value)

    def python_value(self, value: str | None) -> Any:
        return None if value is None else json.loads(value)


class Table(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False

    @classmethod
    def found(cls, where: Any, what: str) -> Self:
        """The row matching ``where``; 404 "``what`` not found" when there is none."""
        row = cls.get_or_none(where)
        if row is None:
            raise NotFound(f"{what} not found")
        return row


class KeyValueTable(Table):
    """A table of JSON values by text key (settings, resilience thresholds, router state).
    Rows are kept as given: the records that read them validate."""

    key = peewee.CharField(primary_key=True)
    value = JsonField()


class ProviderConnectionRow(Table):
    id = peewee.CharField(primary_key=True)
    provider = peewee.CharField()
    name = peewee.CharField(unique=True)
    url = peewee.TextField()
    api_key = peewee.TextField(null=True)  # plain: needed to call upstream; never serialised
    is_active = peewee.BooleanField(default=True)
    max_concurrent = peewee.IntegerField(null=True)
    priority = peewee.IntegerField(default=0)
    test_status = peewee.CharField(default="unknown")
    models = JsonField(default=list)
    created_at = UtcDateTimeField()
    supports_responses = peewee.BooleanField(default=False)

    class Meta:
        table_name = "provider_connection"


class ProviderModelsRow(Table):
    connection = peewee.ForeignKeyField(
        ProviderConnectionRow, primary_key=True, on_delete="CASCADE", column_name="connection_id"
    )
    models = JsonField()
    fetched_at = UtcDateTimeField()

    class Meta:
        table_name = "provider_models"


class ApiKeyRow(Table):
    id = peewee.CharField(primary_key=True)
    label = peewee.CharField()
    key_hash = peewee.CharField(unique=True)  # sha256 hex of the full key; the key itself is gone
    key_preview = peewee.CharField()
    is_active = peewee.BooleanField(default=True)
    created_at = UtcDateTimeField()

    class Meta:
        table_name = "api_key"


class ComboRow(Table):
    id = peewee.CharField(primary_key=True)
    name = peewee.CharField(unique=True)
    model = peewee.CharField(null=True)
    strategy = peewee.CharField()
    nodes = JsonField(default=list)
    created_at = UtcDateTimeField()

    class Meta:
        table_name = "combo"


class ModelAliasRow(Table):
    # not ``alias``: that would shadow peewee's Model.alias()
    name = peewee.CharField(primary_key=True, column_name="alias")
    target = peewee.CharField()

    class Meta:
        table_name = "model_alias"


class FallbackChainRow(Table):
    model = peewee.CharField(primary_key=True)
    chain = JsonField()

    class Meta:
        table_name = "fallback_chain"


class ModelPriceRow(Table):
    """User overrides of the seeded pricing table (the seed itself ships as pricing.json)."""

    model = peewee.CharField(primary_key=True)
    data = JsonField()

    class Meta:
        table_name = "model_price"


class SettingRow(KeyValueTable):
    class Meta:
        table_name = "setting"


class ResilienceRow(KeyValueTable):
    class Meta:
        table_name = "resilience_setting"


class RouterStateRow(KeyValueTable):
    """Small router state that must survive restarts (round-robin positions, random decks)."""

    class Meta:
        table_name = "router_state"


class CallLogRow(Table):
    id = peewee.CharField(primary_key=True)
    timestamp = UtcDateTimeField(index=True)
    path = peewee.CharField()
    requested_model = peewee.CharField()
    provider = peewee.CharField(null=True)
    connection_id = peewee.CharField(null=True)
    model = peewee.CharField(null=True)
    combo = peewee.CharField(null=True)
    attempt = peewee.IntegerField(default=1)
    attempts = JsonField(default=list)
    status = peewee.IntegerField()
    tokens_in = peewee.IntegerField(default=0)
    tokens_out = peewee.IntegerField(default=0)
    cache_read_tokens = peewee.IntegerField(default=0)
    cache_write_tokens = peewee.IntegerField(default=0)
    reasoning_tokens = peewee.IntegerField(default=0)
    usage_estimated = peewee.BooleanField(default=False)
    cost_usd = peewee.FloatField(null=True, default=0.0)  # NULL: no price for the model
    latency_ms = peewee.FloatField(null=True)
    ttft_ms = peewee.FloatField(null=True)
    source_format = peewee.CharField(null=True)
    target_format = peewee.CharField(null=True)
    api_key_id = peewee.CharField(null=True)
    agent = peewee.CharField(null=True)
    streamed = peewee.BooleanField(default=False)
    dropped_fields = JsonField(default=list)
    error = peewee.TextField(null=True)

    class Meta:
        table_name = "call_log"


class SessionRow(Table):
    id = peewee.CharField(primary_key=True)
    name = peewee.CharField(null=True)
    profile = peewee.CharField(null=True)
    started_at = UtcDateTimeField()
    ended_at = UtcDateTimeField(null=True)

    class Meta:
        table_name = "session"


class SessionRecordRow(Table):
    # The autoincrement id gives first-seen order; an upsert keeps it.
    id = peewee.AutoField()
    session = peewee.ForeignKeyField(
        SessionRow, on_delete="CASCADE", column_name="session_id", backref="records"
    )
    record_id = peewee.CharField()
    data = peewee.TextField()

    class Meta:
        table_name = "session_record"
        indexes = ((("session", "record_id"), True),)


class CustomHostRow(Table):
    host = peewee.CharField(primary_key=True)
    enabled = peewee.BooleanField(default=True)
    label = peewee.CharField(null=True)
    kind = peewee.CharField(default="custom")
    added_at = UtcDateTimeField()
    last_seen_at = UtcDateTimeField(null=True)

    class Meta:
        table_name = "custom_host"


class AgentMappingRow(Table):
    id = peewee.AutoField()
    agent_id = peewee.CharField()
    source_model = peewee.CharField()
    target_model = peewee.CharField()
    effort = peewee.CharField(null=True)
    updated_at = UtcDateTimeField()

    class Meta:
        table_name = "agent_mapping"
        indexes = ((("agent_id", "source_model"), True),)


class AgentStateRow(Table):
    agent_id = peewee.CharField(primary_key=True)
    dns_enabled = peewee.BooleanField(default=False)
    cert_trusted = peewee.BooleanField(default=False)
    setup_completed = peewee.BooleanField(default=False)
    last_started_at = UtcDateTimeField(null=True)
    last_error = peewee.TextField(null=True)
    route_all = peewee.BooleanField(default=False)

    class Meta:
        table_name = "agent_state"


class DetectedModelRow(Table):
    agent_id = peewee.CharField()
    model = peewee.CharField()
    count = peewee.IntegerField(default=0)
    first_seen = UtcDateTimeField()
    last_seen = UtcDateTimeField()

    class Meta:
        table_name = "detected_model"
        primary_key = peewee.CompositeKey("agent_id", "model")


class BypassPatternRow(Table):
    pattern = peewee.CharField(primary_key=True)
    created_at = UtcDateTimeField()

    class Meta:
        table_name = "bypass_pattern"


ALL_TABLES: tuple[type[Table], ...] = (
    ProviderConnectionRow, ProviderModelsRow, ApiKeyRow, ComboRow, ModelAliasRow,
    FallbackChainRow, ModelPriceRow, SettingRow, ResilienceRow, RouterStateRow, CallLogRow,
    SessionRow, SessionRecordRow, CustomHostRow, AgentMappingRow, AgentStateRow,
    BypassPatternRow, DetectedModelRow,
)  # fmt: skip
