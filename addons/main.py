"""The ``llmtap`` command line: ``up`` (mitmproxy plus the web app in one loop, or ``--gateway``:
the web app alone) and the dispatch to the other commands. The wiring is :mod:`addons.compose`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router import __version__
from router.errors import BadRequest, LlmtapError
from router.settings import Settings

log = logging.getLogger("llmtap")


# --------------------------------------------------------------------------- llmtap up

# Work that only has to be done once the server is up waits this long after it is.
AFTER_START_S = 0.5


def _freeze_startup_objects() -> None:
    """Everything alive once serving (mitmproxy, pydantic schemas, codecs) lives as long as the
    process: move it out of the collector's sight, so a full collection walks only what the
    traffic holds (about 80 ms per pass otherwise, a p99 spike on calls).

    Then collect the young in larger steps. Python 3.12 runs a young collection every 700 net
    container allocations; a router call keeps a few hundred alive while it runs, so under load
    about one call in 40 paid for one, and every tenth of those for a generation-1 pass over the
    buffer's newest records: 0.05 to 0.14 ms of collector time per call at 200 calls/s (bench,
    2026-11-29), 4-10% of the CPU. At 10,000 it is about 0.005 ms; cycles are still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    gc.enable()  # ``up`` starts with the collector off (see cli)


# How often memory the process freed is handed back to the OS (see _start_memory_trimmer).
TRIM_EVERY_S = 60.0


def _start_memory_trimmer() -> None:
    """glibc keeps memory Python freed (request and response bodies, compressed record bodies,
    JSON buffers of every size, from several threads) in its arenas instead of returning it:
    under a steady load the process's RSS crept up by 1-1.5 MB a minute while the Python heap
    stayed flat (30-minute soak, 2026-11-29); with ``malloc_trim`` once a minute it stayed
    within 2 MB. A daemon thread (ctypes releases the GIL), so the event loop never waits for
    it. Elsewhere than glibc (macOS, musl) there is no ``malloc_trim`` and nothing to do."""
    import ctypes
    import time

    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return

    def run() -> None:
        while True:
            time.sleep(TRIM_EVERY_S)
            trim(0)

    threading.Thread(target=run, name="llmtap-malloc-trim", daemon=True).start()


async def run_up(settings: Settings, provider_specs: Sequence[str] = ()) -> int:
    """One process: mitmproxy Master + our addons, the aiohttp app inside its loop."""
    from addons import mitm

    mitm.prepare()  # before mitmproxy.master: skips the default addons' heavy imports
    from mitmproxy import options
    from mitmproxy.master import Master

    from addons.compose import build_addons, build_runtime, mitm_options
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
            # Once serving, off the start-to-healthy path: freeze what start-up made (see
            # _freeze_startup_objects); and load OpenAI's token
            # vocabularies (~0.4-2 s of CPU, ~45 MB) in a worker thread, not on the event loop at
            # the first call that counts.
            loop = asyncio.get_running_loop()
            loop.call_later(AFTER_START_S, _freeze_startup_objects)
            loop.call_later(AFTER_START_S, _start_memory_trimmer)
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

    _freeze_startup_objects()
    _start_memory_trimmer()
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

    from addons.compose import build_runtime
    from addons.webapp import app_runner
    from web.app import create_app
    from web.runtime import parse_provider_spec

    runtime = await build_runtime(settings)
    runner: web.AppRunner | None = None
    try:
        for spec in provider_specs:
            created = runtime.ensure_provider(parse_provider_spec(spec))
            print(f"provider {created.name} ({created.provider}) -> {created.url}", flush=True)
        runner = app_runner(create_app(runtime))
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
        bound = runner.addresses
        port = int(bound[0][1]) if bound else settings.port
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


# --------------------------------------------------------------------------- CLI


# Settings the command line may give; each subcommand accepts only some of them.
_SETTING_OPTIONS = (
    "host", "port", "data_dir", "proxy_port", "bridge_port", "upstream_ca", "hosts_file",
    "database_url", "gateway",
)  # fmt: skip


def _settings_from_args(args: argparse.Namespace) -> Settings:
    from router.settings import load as load_settings

    given = vars(args)
    cli: dict[str, Any] = {name: given.get(name) for name in _SETTING_OPTIONS}
    cli["gateway"] = cli["gateway"] or None  # a flag left off is not a False to apply
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


def build_parser(*, others: bool = True) -> argparse.ArgumentParser:
    """The command line. ``others=False``: ``up`` alone, without declaring the other commands
    (four modules and ~30 subparsers that ``llmtap up`` would build only to ignore)."""
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

    if not others:
        return parser
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
    if path.exists() and not path.is_dir():
        raise BadRequest(f"data dir {path} is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadRequest(f"data dir {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise BadRequest(f"data dir {path} is not readable and writable by this user")


def cli(argv: Sequence[str] | None = None) -> None:
    words = sys.argv[1:] if argv is None else list(argv)
    # The top-level parser has no option that takes a value: the first word is the command.
    command = next((w for w in words if not w.startswith("-")), None)
    parser = build_parser(others=command != "up")
    args = _parse(parser, words)
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
        data_dir = vars(args).get("data_dir")
        if data_dir is not None and (args.command == "up" or data_dir.exists()):
            check_data_dir(data_dir)
        if args.command == "up":
            # Start-up builds hundreds of thousands of long-lived objects (mitmproxy, pydantic
            # schemas, codecs) and no garbage worth a pass: without this the collector walked
            # them all several times on the way (about 0.1 s of the ~1.1 s of start-up CPU).
            # It is switched back on, with what start-up made frozen, once serving.
            gc.disable()
            settings = _settings_from_args(args)
            check_data_dir(settings.data_dir)
            from addons.cli_backend import refuse_second_instance

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
        details = exc.details if isinstance(exc, BadRequest) else []
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


if __name__ == "__main__":
    cli()
