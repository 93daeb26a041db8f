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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router import __version__
from router.errors import LlmtapError
from router.settings import Settings

log = logging.getLogger("llmtap")


# --------------------------------------------------------------------------- llmtap up


async def run_up(settings: Settings, provider_specs: Sequence[str] = ()) -> int:
    """One process: mitmproxy Master + our addons, the aiohttp app inside its loop."""
    from mitmproxy import addons as mitm_addons
    from mitmproxy import options
    from mitmproxy.master import Master

    from addons.webapp import WebApp
    from web.app import create_app
    from web.runtime import Runtime, parse_provider_spec

    runtime = await Runtime.start(settings)
    try:
        for spec in provider_specs:
            created = runtime.ensure_provider(parse_provider_spec(spec))
            print(f"provider {created.name} ({created.provider}) -> {created.url}", flush=True)

        opts = options.Options()
        master = Master(opts, event_loop=asyncio.get_running_loop())
        master.addons.add(*mitm_addons.default_addons())

        async def started(host: str, port: int) -> None:
            runtime.announce(host, port)
            # Everything alive now (mitmproxy, pydantic schemas, codecs) lives as long as the
            # process: move it out of the collector's sight, so a full collection walks only
            # what the traffic holds (about 80 ms per pass otherwise, a p99 spike on calls).
            gc.collect()
            gc.freeze()
            base = f"http://{host}:{port}"
            print(f"llmtap {__version__} is up", flush=True)
            print(f"  UI            {base}/", flush=True)
            print(
                f"  router API    {base}/v1   (OpenAI / Anthropic / Responses / Gemini)", flush=True
            )
            print(f"  management    {base}/api", flush=True)
            print(f"  data dir      {settings.data_dir}", flush=True)
            print("Ctrl-C stops.", flush=True)

        webapp = WebApp(create_app(runtime.services), settings.host, settings.port, started)
        master.addons.add(
            webapp, *build_addons(runtime, master, lambda: webapp.bound_port or settings.port)
        )
        opts.update(**mitm_options(runtime))

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, master.shutdown)
            except (NotImplementedError, RuntimeError):  # Windows
                signal.signal(sig, lambda *_: master.shutdown())
        await master.run()
        # Before the listeners close with the process: no agent may resolve to a dead port.
        await _remove_hosts_lines(runtime)
        # A web app that cannot bind stops the master (WebApp.running): say why and fail.
        if webapp.error is not None:
            print(f"error: {webapp.error}", file=sys.stderr, flush=True)
            return 1
        return 0
    finally:
        await runtime.close()


async def _remove_hosts_lines(runtime: Any) -> None:
    try:
        change = await asyncio.to_thread(runtime.bridge.remove_dns)
    except LlmtapError as exc:
        print(f"warning: {exc.message} (then run `llmtap repair`)", file=sys.stderr, flush=True)
        return
    if change.removed:
        log.info("removed %d hosts-file lines at shutdown", len(change.removed))


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
    from router.bridge.envcmd import combined_ca_bundle

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
    }
    if settings.upstream_ca is not None:
        bundle = settings.data_dir / "upstream-bundle.pem"
        combined_ca_bundle(settings.upstream_ca, bundle)
        options["ssl_verify_upstream_trusted_ca"] = str(bundle)
    return options


def build_addons(runtime: Any, master: Any, api_port: Any) -> list[Any]:
    """Our addons, in hook order: capture decides and tags, the recorders build records."""
    from addons.capture import CaptureTagger
    from addons.modes import CaptureModes
    from addons.recorder import Recorder, local_process
    from addons.tunnels import TunnelRecorder
    from router.bridge.agents import default_catalog
    from router.bridge.bypass import BypassMatcher
    from router.store import agents as store_agents

    settings = runtime.settings
    runtime.bridge.reload_ca = lambda: reload_certstore(master)
    modes = CaptureModes(settings, master, custom_hosts=lambda: runtime.custom_hosts)
    runtime.capture = modes
    bypass = BypassMatcher(p.pattern for p in store_agents.list_bypass())
    runtime.bypass = bypass
    inspector = runtime.inspector

    def source() -> str:
        return "system-proxy" if modes.system_proxy_active() else "http-proxy"

    tagger = CaptureTagger(
        api_port=api_port,
        bypass=lambda host: runtime.bypass.matches(host),
        tls_intercept=lambda: settings.tls_intercept,
        system_proxy_active=modes.system_proxy_active,
        agents=default_catalog(),
        custom_host=lambda host: runtime.custom_hosts.get(host),
    )
    recorder = Recorder(
        inspector.add,
        inspector.update,
        cost_fn=runtime.router.price,
        max_body_bytes=lambda: settings.max_body_kb * 1024,
        attribute_process=local_process if sys.platform.startswith("linux") else None,
    )
    return [modes, tagger, recorder, TunnelRecorder(inspector.add, inspector.update, source)]


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
    }
    return load_settings(cli)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir", type=Path, help="data dir (default ~/.llmtap, env LLMTAP_DATA_DIR)"
    )
    p.add_argument("--port", type=int, help="API/UI port (default 20128, env LLMTAP_PORT)")
    p.add_argument("--host", help="API/UI bind address (default 127.0.0.1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmtap", description="See and steer what AI coding agents send to LLM providers."
    )
    parser.add_argument("--version", action="version", version=f"llmtap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run llmtap (router API, management API, UI, capture)")
    _common(up)
    up.add_argument("--proxy-port", type=int, help="HTTP proxy capture port (default 8080)")
    up.add_argument("--bridge-port", type=int, help="AgentBridge TLS port (default 443)")
    up.add_argument("--upstream-ca", type=Path, help="extra CA (PEM) trusted for upstream TLS")
    up.add_argument("--hosts-file", type=Path, help="hosts file to manage (default /etc/hosts)")
    up.add_argument(
        "--provider",
        action="append",
        default=[],
        metavar="KIND=URL[,key=KEY][,name=NAME][,models=a|b]",
        help="add a provider connection at start (kept in the DB), e.g. openai=http://127.0.0.1:11434/v1",
    )

    from addons import cli as cli_commands
    from addons import cli_bridge, cli_capture

    cli_capture.add_commands(sub, _common)
    cli_bridge.add_commands(sub, _common)
    if hasattr(cli_commands, "add_commands"):
        cli_commands.add_commands(sub, _common)
    return parser


def cli(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
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
        if args.command == "up":
            settings = _settings_from_args(args)
            code = asyncio.run(run_up(settings, args.provider))
        elif args.command in cli_capture_commands():
            from addons import cli_capture

            code = cli_capture.dispatch(args, _settings_from_args)
        elif args.command in cli_bridge_commands():
            from addons import cli_bridge

            code = cli_bridge.dispatch(args, _settings_from_args)
        else:
            from addons import cli as cli_commands

            code = cli_commands.dispatch(args, _settings_from_args)
    except LlmtapError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        details = getattr(exc, "details", None) or []
        for d in details:
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
