"""The running process's services (settings, store, catalog, router, writers, inspector,
agent-bridge control) and what they do for the API: reload, apply settings, announce, close.

The composition root (:func:`addons.compose.build_runtime`, behind ``llmtap up``) builds and wires
it; the tests build it the same way, so a test server is the real thing minus mitmproxy.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from router.catalog import Catalog
from router.engine import CallInfo, Router
from router.errors import BadRequest, Conflict, FieldError
from router.pricing import PricingTable
from router.providers import normalize_url
from router.routing.breaker import ResilienceSettings
from router.routing.guard import ResilienceGuard
from router.settings import MUTABLE, Settings
from router.store import combos as store_combos
from router.store import config as store_config
from router.store import db as store_db
from router.store import keys as store_keys
from router.store import providers as store_providers
from router.store.records import (
    CallLog,
    ModelPrice,
    ProviderConnection,
    ProviderConnectionCreate,
)
from router.store.shared import (
    ChangeFeed,
    SharedState,
    announce_change,
)
from router.store.state import PersistentState
from router.usage import token_fields
from web.context import Services

if TYPE_CHECKING:
    from router.bridge.control import BridgeControl
    from router.store.writer import CallLogWriter, SessionRecordWriter, StoreWriter
    from router.traffic.service import Inspector

log = logging.getLogger("llmtap.runtime")


class CaptureControl(Protocol):
    """What the API needs from the capture modes (``addons.modes.CaptureModes``, which web must
    not import): their state and the actions of ``/api/tools/traffic-inspector/capture-modes``.
    Each returns the new :meth:`state`."""

    def state(self) -> dict[str, Any]: ...

    async def http_proxy(self, action: str) -> dict[str, Any]: ...

    async def system_proxy(
        self, action: str, port: int | None = None, guard_minutes: int | None = None
    ) -> dict[str, Any]: ...

    async def tls_intercept(self, enabled: bool) -> dict[str, Any]: ...


# Runtime-mutable settings (router.settings.MUTABLE) that take effect only after a restart.
RESTART_TO_APPLY = ("max_request_mb", "bridge_port")


def parse_provider_spec(spec: str) -> ProviderConnectionCreate:
    """``KIND=URL[,key=KEY][,name=NAME][,models=a|b]`` (the ``--provider`` flag)."""
    head, _, rest = spec.partition(",")
    kind, sep, url = head.partition("=")
    if not sep or not kind or not url:
        raise BadRequest(
            f"bad --provider '{spec}'", [FieldError("provider", "expected KIND=URL[,key=...]")]
        )
    fields: dict[str, Any] = {"provider": kind.strip(), "url": url.strip()}
    for part in filter(None, rest.split(",")):
        name, _, value = part.partition("=")
        if name == "key":
            fields["apiKey"] = value
        elif name == "name":
            fields["name"] = value
        elif name == "models":
            fields["models"] = [m for m in value.split("|") if m]
        else:
            raise BadRequest(f"bad --provider option '{name}'", [FieldError("provider", name)])
    return ProviderConnectionCreate.model_validate(fields)


@dataclass
class Runtime:
    """What the process shares, built and wired by the composition root
    (:func:`addons.compose.build_runtime`), which also closes it (:meth:`close`) when the process
    ends. The web app owns only the router's upstream session (``web.app.create_app``)."""

    settings: Settings
    services: Services
    catalog: Catalog
    router: Router
    writer: CallLogWriter
    pricing: PricingTable
    guard: ResilienceGuard
    state: PersistentState | SharedState
    bridge: BridgeControl
    _inspector: Inspector | None = None
    session_writer: SessionRecordWriter | None = None
    store_writer: StoreWriter | None = None  # the one background writer thread
    custom_hosts: dict[str, Any] = field(default_factory=dict)  # by reload_custom_hosts
    capture: CaptureControl | None = None  # set by the composition root; None: no mitmproxy
    api_port: int = 0  # the bound API port once announced (settings.port may be 0)
    started_with: dict[str, Any] = field(default_factory=dict)  # RESTART_TO_APPLY at start
    closed: bool = False
    feed: ChangeFeed | None = None  # on a shared database: changes made by other instances
    renew_upstream: Callable[[], None] | None = None  # set by the web app while it runs

    # ------------------------------------------------------------------ shared database

    def changed(self) -> None:
        """Configuration changed through this instance: tell the others sharing the
        database (a no-op on SQLite)."""
        if self.feed is not None:
            self.feed.announce()
        else:
            announce_change()

    def reload_shared(self) -> None:
        """Another instance changed the configuration: read everything this process holds a
        copy of again (catalog, pricing, resilience thresholds, runtime settings, hosts,
        the router keys already verified)."""
        store_keys.forget()
        self.reload_catalog()
        self.reload_custom_hosts()
        self.pricing.replace(store_config.list_prices())
        self.guard.breakers.settings = ResilienceSettings.model_validate(
            store_config.get_resilience()
        )
        stored = store_config.get_settings()
        changes = {
            name: stored[name]
            for name in MUTABLE
            if name in stored and stored[name] != getattr(self.settings, name)
        }
        if changes:
            try:
                self.apply_settings(changes)
            except ValueError:
                log.warning("ignoring stored settings this instance cannot apply: %s", changes)

    # ------------------------------------------------------------------ catalog

    def reload_catalog(self) -> None:
        """Re-read router configuration from the store into the in-memory catalog."""
        self.catalog.set_connections(store_providers.list_all())
        self.catalog.set_combos(store_combos.list_all())
        self.catalog.set_aliases({a.alias: a.target for a in store_config.list_aliases()})
        self.catalog.set_chains(store_config.list_chains())

    def reload_custom_hosts(self) -> None:
        """The enabled custom hosts by name, read by the capture path on every flow."""
        from router.store import hosts as store_hosts

        self.custom_hosts = {h.host: h for h in store_hosts.list_all() if h.enabled}

    def ensure_provider(self, data: ProviderConnectionCreate) -> ProviderConnection:
        """Create a connection unless one with the same name (or kind + URL) exists."""
        try:
            url = normalize_url(data.provider, data.url)
        except BadRequest:
            url = data.url  # create() below says what is wrong, field by field

        def existing() -> ProviderConnection | None:
            for conn in store_providers.list_all():
                if (data.name and conn.name == data.name) or (
                    not data.name and conn.provider == data.provider and conn.url == url
                ):
                    return conn
            return None

        if (found := existing()) is not None:
            return found
        try:
            created = store_providers.create(data)
        except Conflict:
            # Another gateway instance starting with the same --provider won the race.
            if (found := existing()) is None:
                raise
            return found
        self.reload_catalog()
        self.changed()
        return created

    # ------------------------------------------------------------------ process state

    def apply_settings(self, changes: dict[str, Any]) -> None:
        """Settings changed through the API, applied to the running process: stored on the
        settings object every reader consults on use (keys, login, guard, TLS intercept,
        ports of listeners started later), and pushed into what holds a copy (the live
        buffer's size and body cap). :meth:`pending_restart` names what needs a restart."""
        for name, value in changes.items():
            setattr(self.settings, name, value)
        if {"buffer_size", "max_body_kb"} & changes.keys() and self._inspector is not None:
            self._inspector.buffer.configure(
                size=self.settings.buffer_size, max_body_kb=self.settings.max_body_kb
            )

    def pending_restart(self) -> list[str]:
        """Changed settings a restart applies: the request size cap is the HTTP server's
        (fixed when the app is built); the AgentBridge listener binds its port at start."""
        return [
            name
            for name in RESTART_TO_APPLY
            if getattr(self.settings, name) != self.started_with.get(name)
        ]

    def management_token(self) -> str:
        """The configured one (a gateway's instances share it), else generated on first
        start and stored 0600 in the data dir (``llmtap token``)."""
        if self.settings.management_token:
            return self.settings.management_token
        path = self.settings.data_dir / "token"
        if path.exists():
            return path.read_text().strip()
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token)
        return token

    def announce(self, host: str, port: int) -> None:
        """Tell CLI commands where the running server is."""
        self.api_port = port  # inspector records of /v1 calls carry the real API port
        state = {"host": host, "port": port, "pid": os.getpid()}
        path = self.settings.data_dir / "server.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, path)

    def _forget_server(self) -> None:
        """Remove server.json, only if this process wrote it: a second or failed ``up`` must
        not make the running instance look stopped."""
        path = self.settings.data_dir / "server.json"
        try:
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink(missing_ok=True)
        except (OSError, ValueError, AttributeError):
            pass

    def replace_upstream_client(self) -> None:
        """A new router upstream session from the current settings (the upstream CA changed):
        calls from now on use it, calls already on the old one finish there. The web app owns
        the sessions (``web.app.upstream_session`` sets ``renew_upstream`` and closes them all
        at cleanup)."""
        if self.renew_upstream is None:
            raise RuntimeError("no running web app owns an upstream session")
        self.renew_upstream()

    async def close(self) -> None:
        """Close what the process holds, once: queued call-log rows and session upserts land,
        open sessions get ``ended_at`` (not on a team gateway), then the store closes. The
        upstream session is the web app's (closed by its cleanup)."""
        if self.closed:
            return
        self.closed = True
        try:
            self._forget_server()
            self.writer.close()
            if self.session_writer is not None:
                self.session_writer.close()
            if self._inspector is not None:
                # A gateway's sessions live on in the shared store (other instances record).
                self._inspector.close(end_sessions=not self.settings.gateway)
            self.state.close()
            if self.store_writer is not None:
                self.store_writer.close()
            if self.feed is not None:
                self.feed.close()
        finally:
            store_db.close_database()

    @property
    def inspector(self) -> Inspector:
        if self._inspector is None:
            raise RuntimeError("the inspector is created by addons.compose.build_runtime")
        return self._inspector

    # ------------------------------------------------------------------ management API

    def set_pricing_overrides(self, overrides: list[ModelPrice]) -> None:
        """Apply new pricing overrides (POST/DELETE /api/pricing) to the running router.

        The router's price function, the context-window lookup and the strategies' ``price_of``
        all close over ``self.pricing``, so the table replaces its contents in place.
        """
        self.pricing.replace(overrides)


def log_call(writer: Any, info: CallInfo, phase: str) -> None:
    """A router observer: a finished call becomes its call-log row."""
    if phase != "finish" or info.request is None:
        return
    writer.submit(call_log(info))


def call_log(info: CallInfo) -> CallLog:
    step = info.step
    attempts = [
        {
            "provider": a.provider,
            "connectionId": a.connection_id,
            "model": a.model,
            "status": a.status,
            "error": a.error,
            "skipped": a.skipped,
            "latencyMs": a.latency_ms,
        }
        for a in info.attempts
    ]
    req = info.request
    # Built without validation (every value below has its field's type; a test validates a
    # row's own dump against it), then masked as validation would have: this runs once per
    # call on the loop thread, before the journal append that makes the call durable.
    return CallLog.trusted(
        id=info.inbound.request_id,
        timestamp=datetime.fromtimestamp(info.started_at, UTC),
        path=info.inbound.path,
        requested_model=info.requested_model,
        provider=step.connection.name if step else None,
        connection_id=step.connection.id if step else None,
        model=step.model if step else None,
        combo=step.combo if step else None,
        attempt=max(1, sum(1 for a in info.attempts if a.skipped is None)),
        attempts=attempts,
        status=info.status or 0,
        **token_fields(info.usage),
        cost_usd=info.cost_usd,
        latency_ms=info.latency_ms,
        ttft_ms=info.ttft_ms,
        source_format=info.inbound.format,
        target_format=info.target_format,
        api_key_id=info.inbound.api_key_id,
        agent=info.inbound.agent,
        streamed=info.streamed,
        dropped_fields=list(req.dropped) if req else [],
        error=info.error,
    ).mask()
