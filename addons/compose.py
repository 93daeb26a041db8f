"""The composition root: the one place that wires the process. :func:`build_runtime` builds the
core's services (store, catalog, pricing, guard, router, call log, inspector, AgentBridge
control) as a :class:`web.runtime.Runtime`; :func:`build_addons` and :func:`mitm_options` wire
them into mitmproxy. ``llmtap up`` (:mod:`addons.main`) and the tests' servers start here.

Imports are inside the functions: ``llmtap`` commands other than ``up`` must not pay for them.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mitmproxy.master import Master

    from router.settings import Settings
    from web.runtime import Runtime


async def build_runtime(settings: Settings) -> Runtime:
    """The process's services, wired. The caller closes them (``await runtime.close()``); the
    router's upstream session opens and closes with the web app (``web.app.create_app``)."""
    from router import ir
    from router.bridge.bypass import BypassMatcher
    from router.bridge.control import BridgeControl
    from router.catalog import Catalog
    from router.engine import Router, Timeouts
    from router.pricing import PricingTable
    from router.providers import load_upstream_ca
    from router.routing.breaker import BreakerRegistry, ResilienceSettings
    from router.routing.guard import ResilienceGuard
    from router.routing.limits import ConcurrencyLimiter
    from router.routing.resolve import Resolver, StrategyOrderer
    from router.routing.stats import NodeStats
    from router.routing.strategies import StrategyContext
    from router.store import config as store_config
    from router.store import db as store_db
    from router.store import keys as store_keys
    from router.store.shared import (
        ChangeFeed,
        SharedBreakers,
        SharedLeases,
        SharedState,
        current_change,
    )
    from router.store.state import PersistentState
    from router.store.writer import CallLogWriter, SessionRecordWriter, StoreWriter
    from router.traffic.buffer import LiveBuffer
    from router.traffic.calls import CallRecorder
    from router.traffic.service import Inspector
    from router.usage import cost_usd
    from web.context import Services
    from web.runtime import RESTART_TO_APPLY, Runtime, log_call

    if settings.upstream_ca is not None:
        # Refused before anything opens (the session that uses it opens with the app).
        load_upstream_ca(settings.upstream_ca)
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    store_db.open_database(settings.database)
    # Read before any configuration is loaded: a change made after this is reloaded.
    change_counter = current_change() if settings.shared_database else None
    catalog = Catalog()
    pricing = PricingTable(store_config.list_prices())

    def price(model: str, usage: ir.Usage) -> float | None:
        return cost_usd(usage, pricing.lookup(model))

    def context_window(model: str) -> int | None:
        found = pricing.lookup(model)
        return found.context_window if found else None

    resilience = ResilienceSettings.model_validate(store_config.get_resilience())
    # On a shared database (a team gateway) breakers, 429 cooldowns, maxConcurrent leases and
    # strategy state are shared with the other instances (router/store/shared.py).
    shared = settings.shared_database
    share = SharedBreakers() if shared else None
    if share is not None:
        share.refresh(store_db.database.connection())
    leases = SharedLeases() if shared else None
    guard = ResilienceGuard(
        BreakerRegistry(resilience, share=share), ConcurrencyLimiter(), NodeStats(), leases
    )
    # One instance per SQLite file: state in memory, written behind. On PostgreSQL the
    # instances of a gateway advance one shared rotation in the database.
    # One writer thread (one connection) for every background sink: see router/store/writer.
    store_writer = StoreWriter(journal=settings.data_dir / "journal")
    state: PersistentState | SharedState = (
        SharedState() if shared else PersistentState(store_writer)
    )
    strategy_ctx = StrategyContext(
        stats=guard.stats,
        breakers=guard.breakers,
        limiter=guard.limiter,
        state=state,
        price_of=pricing.lookup,
    )
    router = Router(
        Resolver(catalog, StrategyOrderer(strategy_ctx, context_window)),
        price=price,
        guard=guard,
        timeouts=Timeouts(
            first_byte=settings.first_byte_timeout_s,
            idle=settings.idle_timeout_s,
            max_response_bytes=settings.max_response_mb << 20,
        ),
    )
    writer = CallLogWriter(writer=store_writer)
    # As the reply goes out: a client that saw success has its row journaled (durable_observers).
    router.durable_observers.append(lambda info, phase: log_call(writer, info, phase))

    def verify_key(key: str) -> str | None:
        found = store_keys.verify(key)
        return found.id if found is not None else None

    services = Services(settings=settings, router=router, catalog=catalog, verify_key=verify_key)
    # The inspector: live buffer, recording sessions, /v1 calls as records.
    session_writer = SessionRecordWriter(writer=store_writer)
    store_writer.recover()  # what a killed predecessor journaled (every channel is attached)
    inspector = Inspector(
        LiveBuffer(settings.buffer_size, settings.max_body_kb),
        lambda sid, rid, data: session_writer.submit((sid, rid, data)),
    )
    rt = Runtime(
        settings,
        services,
        catalog,
        router,
        writer,
        pricing,
        guard,
        state,
        BridgeControl.from_settings(settings, catalog),
        _inspector=inspector,
        session_writer=session_writer,
        store_writer=store_writer,
    )
    calls = CallRecorder(inspector, lambda: rt.api_port or settings.port)
    router.observers.append(calls.observe)
    # A recording session keeps router records: build a call's final record before its reply.
    router.observe_finish_now = inspector.recording
    rt.reload_catalog()
    rt.reload_custom_hosts()
    rt.bridge.custom_hosts = lambda: list(rt.custom_hosts)
    rt.bridge.on_bypass = lambda patterns: setattr(rt, "bypass", BypassMatcher(patterns))
    rt.management_token()
    rt.started_with = {name: getattr(settings, name) for name in RESTART_TO_APPLY}
    if share is not None and leases is not None:
        loop = asyncio.get_running_loop()
        rt.feed = ChangeFeed(
            str(settings.database),
            lambda: loop.call_soon_threadsafe(rt.reload_shared),
            seen=change_counter,
            refreshers=[share.refresh, leases.renew],
        )
        rt.feed.start()
    return rt


def reload_certstore(master: Master) -> None:
    """Serve leaves from the CA now in confdir: mitmproxy caches leaves in its CertStore, and a
    ``configure`` of ``confdir`` makes tlsconfig build a fresh store from the files."""
    tls = master.addons.get("tlsconfig")
    if tls is not None:
        tls.configure({"confdir"})


def mitm_options(runtime: Runtime) -> dict[str, Any]:
    """mitmproxy options: our CA as confdir, upstream TLS verified against the system roots
    plus the configured upstream CA (added, never replacing), SSE streamed and recorded."""
    from certs import ca as ca_mod
    from router.store import agents as store_agents

    settings = runtime.settings
    ca_mod.load_or_create(settings.confdir)
    options: dict[str, Any] = {
        "mode": [],
        "confdir": str(settings.confdir),
        "listen_host": "127.0.0.1",
        "ssl_insecure": False,
        "store_streamed_bodies": True,
        "stream_large_bodies": "1m",
        "connection_strategy": "lazy",
        # AgentBridge (reverse mode): the agent's Host header goes on unchanged.
        "keep_host_header": True,
        "llmtap_api_port": settings.port,
        "llmtap_tls_intercept": settings.tls_intercept,
        "llmtap_bypass": [p.pattern for p in store_agents.list_bypass()],
        "llmtap_dns_servers": [s for s in settings.dns_servers.split(",") if s.strip()],
        "llmtap_origin_port": settings.origin_port,
    }
    if settings.upstream_ca is not None:
        options["ssl_verify_upstream_trusted_ca"] = upstream_bundle(
            settings, settings.upstream_ca, forget_others=True
        )
    return options


def upstream_bundle(settings: Settings, upstream_ca: Path, *, forget_others: bool = False) -> str:
    """The system roots plus the upstream CA, as mitmproxy's upstream trust file. Named after
    its content: mitmproxy caches its TLS contexts by that path, so a changed CA needs a new
    name to be used by the next connection. Earlier ones are removed at start only (a running
    proxy may still be reading the one it used a moment ago)."""
    import hashlib

    from router.bridge.envcmd import combined_ca_bundle

    staging = settings.data_dir / "upstream-bundle.pem"
    combined_ca_bundle(upstream_ca, staging)
    digest = hashlib.sha256(staging.read_bytes()).hexdigest()[:16]
    bundle = staging.with_name(f"upstream-bundle-{digest}.pem")
    staging.replace(bundle)
    if forget_others:
        for old in settings.data_dir.glob("upstream-bundle-*.pem"):
            if old != bundle:
                old.unlink(missing_ok=True)
    return str(bundle)


def apply_upstream_ca(runtime: Runtime, master: Master, upstream_ca: Path) -> None:
    """An upstream CA set through the API, live: mitmproxy's upstream trust option and a new
    router session, both for the connections made from now on."""
    master.options.update(
        ssl_verify_upstream_trusted_ca=upstream_bundle(runtime.settings, upstream_ca)
    )
    runtime.replace_upstream_client()


def build_addons(runtime: Runtime, master: Master) -> list[Any]:
    """Our addons, in hook order: options first; capture decides and tags; the recorder
    builds the record from the request as the client sent it; divert then sends the flow to
    the router hop or on to the real origin; the tunnel recorder counts raw tunnels."""
    from addons.capture import CaptureTagger
    from addons.chain import Chain
    from addons.divert import Divert
    from addons.hostsdns import HostsDns
    from addons.modes import CaptureModes
    from addons.options import LlmtapOptions
    from addons.recorder import LocalProcesses, Recorder
    from addons.tunnels import TunnelRecorder
    from router.bridge.agents import default_catalog
    from router.store import agents as store_agents
    from web.security import HOP_SECRET

    settings = runtime.settings
    bridge = runtime.bridge  # the control side (router.bridge.control.BridgeControl)
    catalog = bridge.agents if bridge is not None else default_catalog()
    modes = CaptureModes(settings, master, custom_hosts=lambda: runtime.custom_hosts)
    runtime.capture = modes
    if bridge is not None:
        bridge.certs.reload_ca = lambda: reload_certstore(master)
        bridge.listener = modes.bridge_listener
        bridge.on_bypass = modes.set_bypass
        bridge.certs.apply_upstream_ca = lambda path: apply_upstream_ca(runtime, master, path)
    inspector = runtime.inspector
    agent_hosts = frozenset(catalog.all_hosts())

    def source() -> str:
        return "system-proxy" if modes.system_proxy_active() else "http-proxy"

    def route_all(agent_id: str) -> bool:
        return store_agents.get_agent_state(agent_id).route_all

    tagger = CaptureTagger(
        agents=catalog,
        custom_host=lambda host: runtime.custom_hosts.get(host),
        find_mapping=store_agents.find_mapping,  # read live: a PUT applies to the next call
        route_all=route_all,
        record_models=store_agents.add_detected_models,
    )
    recorder = Recorder(
        inspector.add,
        inspector.update,
        cost_fn=runtime.router.price,
        max_body_bytes=lambda: settings.max_body_kb * 1024,
        attribute_process=LocalProcesses() if sys.platform.startswith("linux") else None,
    )
    divert = Divert(
        secret=HOP_SECRET,
        # hosts llmtap may have pointed at itself in the hosts file: resolved through DNS
        spoofable=lambda host: host in agent_hosts or host in runtime.custom_hosts,
        counters=modes.bridge_counters,
    )
    tunnels = TunnelRecorder(inspector.add, inspector.update, source)
    # One addon for mitmproxy to offer each event to (addons/chain.py), the parts in hook order.
    return [
        Chain(LlmtapOptions(), modes, HostsDns(runtime.bridge), tagger, recorder, divert, tunnels)
    ]
