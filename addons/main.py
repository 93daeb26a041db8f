"""The composition root and the ``llmtap`` command line: wires core, web app and mitmproxy."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router import __version__
from router.errors import LlmtapError
from router.settings import Settings

log = logging.getLogger("llmtap")


# --------------------------------------------------------------------------- the wiring


async def build_runtime(settings: Settings) -> Any:
    """The process's services, wired: store, catalog, pricing, guard, router, call log,
    inspector, agent-bridge control (a :class:`web.runtime.Runtime`). The caller closes it
    (``await runtime.close()``); the router's upstream session opens and closes with the web
    app (``web.app.create_app``). ``llmtap up`` and the tests' servers start from here."""
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
    from router.traffic.service import CallRecorder, Inspector
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

    def price(model: str, usage: ir.Usage) -> float:
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
    store_writer = StoreWriter()
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
    router.observers.append(lambda info, phase: log_call(writer, info, phase))

    def verify_key(key: str) -> str | None:
        found = store_keys.verify(key)
        return found.id if found is not None else None

    services = Services(settings=settings, router=router, catalog=catalog, verify_key=verify_key)
    # The inspector: live buffer, recording sessions, /v1 calls as records.
    session_writer = SessionRecordWriter(writer=store_writer)
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


# --------------------------------------------------------------------------- llmtap up

# Work that only has to be done once the server is up waits this long after it is.
AFTER_START_S = 0.5


def _freeze_startup_objects() -> None:
    gc.collect()
    gc.freeze()


async def run_up(settings: Settings, provider_specs: Sequence[str] = ()) -> int:
    """One process: mitmproxy Master + our addons, the aiohttp app inside its loop."""
    from addons import mitm

    mitm.prepare()  # before mitmproxy.master: skips the default addons' heavy imports
    from mitmproxy import options
    from mitmproxy.master import Master

    from addons.webapp import WebApp
    from router.providers.session import preload_trust
    from router.usage import warm_tokenizers
    from web.app import create_app
    from web.runtime import parse_provider_spec

    runtime = await build_runtime(settings)
    try:
        for spec in provider_specs:
            created = runtime.ensure_provider(parse_provider_spec(spec))
            print(f"provider {created.name} ({created.provider}) -> {created.url}", flush=True)

        opts = options.Options()
        master = Master(opts, event_loop=asyncio.get_running_loop())
        master.addons.add(*mitm.addons())

        async def started(host: str, port: int) -> None:
            runtime.announce(host, port)
            # Diverted agent calls hop to this port; a wildcard bind is reached on loopback.
            wildcard = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "localhost": "127.0.0.1"}
            hop_host = {**wildcard, "::": "::1"}.get(host, host)
            opts.update(llmtap_api_port=port, llmtap_api_host=hop_host)
            # Once serving, off the start-to-healthy path: move everything alive now
            # (mitmproxy, pydantic schemas, codecs), which lives as long as the process, out
            # of the collector's sight, so a full collection walks only what the traffic holds
            # (about 80 ms per pass otherwise, a p99 spike on calls); and load OpenAI's token
            # vocabularies (~2 s of CPU, ~60 MB) in a worker thread, not on the event loop at
            # the first call that counts.
            loop = asyncio.get_running_loop()
            loop.call_later(AFTER_START_S, _freeze_startup_objects)
            loop.call_later(AFTER_START_S, lambda: preload_trust(runtime.router.client))
            # A daemon thread, not the default executor: Ctrl-C right after start must not
            # wait for the vocabularies (asyncio.run joins the executor's threads at exit).
            warm = threading.Thread(target=warm_tokenizers, name="llmtap-tokenizers", daemon=True)
            loop.call_later(AFTER_START_S, warm.start)
            base = f"http://{host}:{port}"
            print(f"llmtap {__version__} is up", flush=True)
            print(f"  UI            {base}/", flush=True)
            if runtime.settings.require_login:
                # The start URL sets the login cookie (like Jupyter's): the UI says to use it.
                login = f"{base}/?token={runtime.management_token()}"
                print(f"  login         {login}   (requireLogin is on)", flush=True)
            print(
                f"  router API    {base}/v1   (OpenAI / Anthropic / Responses / Gemini)", flush=True
            )
            print(f"  management    {base}/api", flush=True)
            print(f"  data dir      {settings.data_dir}", flush=True)
            print("Ctrl-C stops.", flush=True)

        webapp = WebApp(create_app(runtime), settings.host, settings.port, started)
        master.addons.add(webapp, *build_addons(runtime, master))
        opts.update(**mitm_options(runtime))

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, master.shutdown)
            except (NotImplementedError, RuntimeError):  # Windows
                signal.signal(sig, lambda *_: master.shutdown())
        await master.run()
        # A web app that cannot bind stops the master (WebApp.running): say why and fail.
        if webapp.error is not None:
            from addons.modes import port_holder

            holder = port_holder(settings.port) if settings.port else None
            hint = f" (port {settings.port} is held by {holder}: is llmtap already running?)"
            print(f"error: {webapp.error}{hint if holder else ''}", file=sys.stderr, flush=True)
            return 1
        return 0
    finally:
        await runtime.close()


def _serving(settings: Settings, host: str, port: int) -> None:
    """Say where everything is, once the API listens."""
    from router.store.db import redact_url

    # Everything alive now (mitmproxy, pydantic schemas, codecs) lives as long as the
    # process: move it out of the collector's sight, so a full collection walks only
    # what the traffic holds (about 80 ms per pass otherwise, a p99 spike on calls).
    gc.collect()
    gc.freeze()
    base = f"http://{host}:{port}"
    what = "gateway " if settings.gateway else ""
    print(f"llmtap {what}{__version__} is up", flush=True)
    print(f"  UI            {base}/", flush=True)
    print(f"  router API    {base}/v1   (OpenAI / Anthropic / Responses / Gemini)", flush=True)
    print(f"  management    {base}/api", flush=True)
    print(f"  data dir      {settings.data_dir}", flush=True)
    if settings.database_url:
        print(f"  database      {redact_url(settings.database_url)}", flush=True)
    print("Ctrl-C stops.", flush=True)


# --------------------------------------------------------------------------- llmtap up --gateway


async def run_gateway(settings: Settings, provider_specs: Sequence[str] = ()) -> int:
    """A team gateway: router API, management API and UI on one aiohttp server, without
    mitmproxy and its capture listeners (a gateway has no agents of its own). Several of
    these share one PostgreSQL database behind a load balancer (docs/deploy.md)."""
    from aiohttp import web

    from web.app import create_app
    from web.runtime import parse_provider_spec

    runtime = await build_runtime(settings)
    runner: web.AppRunner | None = None
    try:
        for spec in provider_specs:
            created = runtime.ensure_provider(parse_provider_spec(spec))
            print(f"provider {created.name} ({created.provider}) -> {created.url}", flush=True)
        # handler_cancellation: a client that disconnects cancels its upstream call.
        runner = web.AppRunner(create_app(runtime), handler_cancellation=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            print(
                f"error: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}",
                file=sys.stderr,
                flush=True,
            )
            return 1
        sockets = getattr(site._server, "sockets", None) or []
        port = int(sockets[0].getsockname()[1]) if sockets else settings.port
        runtime.announce(settings.host, port)
        _serving(settings, settings.host, port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):  # Windows
                signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
        await stop.wait()
        return 0
    finally:
        if runner is not None:
            await runner.cleanup()
        await runtime.close()


def reload_certstore(master: Any) -> None:
    """Serve leaves from the CA now in confdir: mitmproxy caches leaves in its CertStore, and a
    ``configure`` of ``confdir`` makes tlsconfig build a fresh store from the files."""
    tls = master.addons.get("tlsconfig")
    if tls is not None:
        tls.configure({"confdir"})


def mitm_options(runtime: Any) -> dict[str, Any]:
    """mitmproxy options: our CA as confdir, upstream TLS verified against the system roots
    plus the configured upstream CA (added, never replacing), SSE streamed and recorded."""
    from certs import ca as ca_mod
    from router.store import agents as store_agents

    settings = runtime.settings
    ca_mod.load_or_create(runtime.confdir)
    options: dict[str, Any] = {
        "mode": [],
        "confdir": str(runtime.confdir),
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


def upstream_bundle(settings: Any, upstream_ca: Path, *, forget_others: bool = False) -> str:
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


def apply_upstream_ca(runtime: Any, master: Any, upstream_ca: Path) -> None:
    """An upstream CA set through the API, live: mitmproxy's upstream trust option and a new
    router session, both for the connections made from now on."""
    master.options.update(
        ssl_verify_upstream_trusted_ca=upstream_bundle(runtime.settings, upstream_ca)
    )
    runtime.replace_upstream_client()


def build_addons(runtime: Any, master: Any) -> list[Any]:
    """Our addons, in hook order: options first; capture decides and tags; the recorder
    builds the record from the request as the client sent it; divert then sends the flow to
    the router hop or on to the real origin; the tunnel recorder counts raw tunnels."""
    from addons.capture import CaptureTagger
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
        bridge.reload_ca = lambda: reload_certstore(master)
        bridge.listener = modes.bridge_listener
        bridge.on_bypass = modes.set_bypass
        bridge.apply_upstream_ca = lambda path: apply_upstream_ca(runtime, master, path)
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
    return [LlmtapOptions(), modes, HostsDns(runtime.bridge), tagger, recorder, divert, tunnels]


# --------------------------------------------------------------------------- CLI


def _settings_from_args(args: argparse.Namespace) -> Settings:
    from router.settings import load as load_settings

    cli: dict[str, Any] = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "data_dir": getattr(args, "data_dir", None),
        "proxy_port": getattr(args, "proxy_port", None),
        "bridge_port": getattr(args, "bridge_port", None),
        "upstream_ca": getattr(args, "upstream_ca", None),
        "hosts_file": getattr(args, "hosts_file", None),
        "database_url": getattr(args, "database_url", None),
        "gateway": getattr(args, "gateway", None) or None,
    }
    return load_settings(cli)


def _opt(name: str, text: str) -> str:
    """An option's help: what it is, its environment variable and its default (from Settings,
    so the help cannot drift from what is used)."""
    from router.settings import Settings

    field = Settings.model_fields[name]
    default: Any = field.default
    if field.default_factory is not None:
        default = {"data_dir": "~/.llmtap", "hosts_file": "the OS hosts file"}.get(name, "-")
    shown = "none" if default is None else default
    return f"{text} (env LLMTAP_{name.upper()}, default {shown})"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, help=_opt("data_dir", "data dir"))
    p.add_argument("--port", type=int, help=_opt("port", "API/UI port"))
    p.add_argument(
        "--host",
        help=_opt("host", "API/UI bind address; beyond loopback it needs requireApiKey on"),
    )
    p.add_argument(
        "--database-url",
        metavar="URL",
        help=_opt(
            "database_url",
            "sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB (a team gateway); "
            "none means SQLite in the data dir",
        ),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmtap", description="See and steer what AI coding agents send to LLM providers."
    )
    parser.add_argument("--version", action="version", version=f"llmtap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run llmtap (router API, management API, UI, capture)")
    _common(up)
    up.add_argument(
        "--gateway",
        action="store_true",
        help="a team gateway: router API, management API and UI without capture, usually "
        "several instances on one PostgreSQL (--database-url); beyond loopback it needs "
        "requireApiKey on and LLMTAP_MANAGEMENT_TOKEN set (docs/deploy.md)",
    )
    up.add_argument("--proxy-port", type=int, help=_opt("proxy_port", "HTTP proxy capture port"))
    up.add_argument("--bridge-port", type=int, help=_opt("bridge_port", "AgentBridge TLS port"))
    up.add_argument(
        "--upstream-ca",
        type=Path,
        help=_opt("upstream_ca", "extra CA (PEM) trusted for upstream TLS, added to the system's"),
    )
    up.add_argument("--hosts-file", type=Path, help=_opt("hosts_file", "hosts file to manage"))
    up.add_argument(
        "--provider",
        action="append",
        default=[],
        metavar="KIND=URL[,key=KEY][,name=NAME][,models=a|b]",
        help="add a provider connection at start (kept in the DB; repeatable; KIND is one of "
        "openai, anthropic, gemini), e.g. openai=http://127.0.0.1:11434/v1",
    )

    from addons import cli as cli_commands
    from addons import cli_bridge, cli_capture, cli_db

    cli_capture.add_commands(sub, _common)
    cli_bridge.add_commands(sub, _common)
    cli_db.add_commands(sub, _common)
    cli_commands.add_commands(sub, _common)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Like parse_args, but an unknown option is reported with its subcommand's usage."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        chosen = subparsers.choices.get(args.command, parser)
        chosen.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def check_data_dir(path: Path) -> None:
    """A usable data dir (created if missing), or one LlmtapError line saying what is wrong."""
    from router.errors import BadRequest

    if path.exists() and not path.is_dir():
        raise BadRequest(f"data dir {path} is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadRequest(f"data dir {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise BadRequest(f"data dir {path} is not readable and writable by this user")


def cli(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = _parse(parser, argv)
    # `up` is a server and says what it does; the other commands speak only through output.
    default_level = "INFO" if args.command == "up" else "WARNING"
    logging.basicConfig(
        level=os.environ.get("LLMTAP_LOG_LEVEL", default_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One INFO line per upstream request is noise (and costs time on every call); the call
    # log and the inspector already record each call.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        data_dir = getattr(args, "data_dir", None)
        if data_dir is not None and (args.command == "up" or data_dir.exists()):
            check_data_dir(data_dir)
        if args.command == "up":
            settings = _settings_from_args(args)
            check_data_dir(settings.data_dir)
            from addons.cli import refuse_second_instance

            refuse_second_instance(settings)
            run = run_gateway if settings.gateway else run_up
            code = asyncio.run(run(settings, args.provider))
        elif args.command in cli_capture_commands():
            from addons import cli_capture

            code = cli_capture.dispatch(args, _settings_from_args)
        elif args.command in cli_bridge_commands():
            from addons import cli_bridge

            code = cli_bridge.dispatch(args, _settings_from_args)
        elif args.command == "db":
            from addons import cli_db

            code = cli_db.dispatch(args, _settings_from_args)
        else:
            from addons import cli as cli_commands

            code = cli_commands.dispatch(args, _settings_from_args)
    except LlmtapError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        details = getattr(exc, "details", None) or []
        for d in details:
            if d.message not in exc.message:  # say each thing once
                print(f"  {d.field}: {d.message}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def cli_capture_commands() -> frozenset[str]:
    from addons import cli_capture

    return cli_capture.COMMANDS


def cli_bridge_commands() -> frozenset[str]:
    from addons import cli_bridge

    return cli_bridge.COMMANDS


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


if __name__ == "__main__":
    cli()
