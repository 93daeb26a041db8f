"""CLI commands for capture: ``llmtap env``, ``llmtap run -- CMD`` and ``llmtap repair``."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from addons.cli_backend import running_server, table
from router.bridge.envcmd import SHELLS, Shell, render_env
from router.errors import LlmtapError
from router.settings import Settings

COMMANDS = frozenset({"env", "run", "repair"})


def add_commands(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    env = sub.add_parser("env", help="print shell lines that send a terminal through llmtap")
    common(env)
    env.add_argument("--shell", choices=["bash", "zsh", "fish", "powershell"], default=None)
    run = sub.add_parser("run", help="run one command with its traffic captured by llmtap")
    common(run)
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    repair = sub.add_parser(
        "repair", help="remove llmtap's hosts-file lines and revert the system proxy (offline too)"
    )
    common(repair)
    repair.add_argument("--hosts-file", type=Path, help="hosts file (default /etc/hosts)")
    repair.add_argument("--json", action="store_true", help="print JSON instead of a table")


def dispatch(
    args: argparse.Namespace, settings_fn: Callable[[argparse.Namespace], Settings]
) -> int:
    settings = settings_fn(args)
    if args.command == "repair":
        return _repair(settings, as_json=args.json)
    server = running_server(settings.data_dir)  # the one liveness rule (addons/cli_backend.py)
    if server is None:
        raise LlmtapError("llmtap is not running; start it first with ./scripts/up (or llmtap up)")
    _start_http_proxy(settings, server)
    env = capture_env(settings)
    if args.command == "env":
        shell: Shell = args.shell or _guess_shell()
        print(render_env(env, shell))
        return 0
    cmd = [c for c in args.cmd if c != "--"] if args.cmd[:1] == ["--"] else list(args.cmd)
    if not cmd:
        raise LlmtapError("usage: llmtap run -- CMD [ARGS...]")
    from router.bridge.envcmd import run_environment

    full_env = run_environment(
        os.environ,
        env["HTTPS_PROXY"],
        Path(env["SSL_CERT_FILE"]),
        node_ca_path=Path(env["NODE_EXTRA_CA_CERTS"]),
    )
    try:
        return subprocess.call(cmd, env=full_env)
    except FileNotFoundError:
        raise LlmtapError(f"command not found: {cmd[0]}") from None


def capture_env(settings: Settings) -> dict[str, str]:
    """The proxy/CA variables for the running instance (writes the combined CA bundle)."""
    from certs import ca as ca_mod
    from router.bridge.envcmd import combined_ca_bundle, proxy_env

    ca = ca_mod.load_or_create(settings.confdir)
    bundle = combined_ca_bundle(ca.paths.cert, settings.data_dir / "ca-bundle.pem")
    url = f"http://127.0.0.1:{settings.proxy_port}"
    return proxy_env(url, bundle, node_ca_path=ca.paths.cert)


def _start_http_proxy(settings: Settings, server: tuple[str, int]) -> None:
    import httpx

    host, port = server
    host = f"[{host}]" if ":" in host else host
    token = (settings.data_dir / "token").read_text().strip()
    resp = httpx.post(
        f"http://{host}:{port}/api/tools/traffic-inspector/capture-modes/http-proxy",
        json={"action": "start"},
        headers={"X-Llmtap-Token": token},
        timeout=10,
    )
    if resp.status_code >= 400:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError):
            message = resp.text
        raise LlmtapError(f"could not start the HTTP proxy: {message}")
    state = resp.json()
    port = state.get("httpProxy", {}).get("port")
    if isinstance(port, int):
        settings.proxy_port = port


def _repair(settings: Settings, *, as_json: bool = False) -> int:
    """Works with the server stopped (and while it runs: the files are the truth). With a
    database, the agents' DNS flags are cleared too, so nothing re-adds the lines."""
    from router.bridge.control import BridgeControl
    from router.bridge.repair import repair
    from router.bridge.sysproxy import SystemProxy
    from router.store.db import close_database, open_database

    control = BridgeControl.from_settings(settings)
    if settings.shared_database or settings.db_path.exists():
        open_database(settings.database)
        try:
            report = control.repair()
        finally:
            close_database()
    else:
        report = repair(control.hosts, SystemProxy(control.runner, control.journal))
    print(json.dumps(report, indent=2) if as_json else repair_table(report, settings))
    return 1 if report["errors"] else 0


def repair_table(report: Mapping[str, Any], settings: Settings) -> str:
    """What ``repair`` did, one row per half, like the other commands' tables."""
    removed = report["hostsLinesRemoved"]
    rows = [
        {"action": "hosts file", "result": (
            f"removed {len(removed)} lines ({settings.hosts_file})" if removed
            else f"nothing to remove ({settings.hosts_file})")},
        {"action": "resolver cache",
         "result": "flushed" if report["resolverFlushed"] else "not flushed"},
        {"action": "system proxy",
         "result": "reverted" if report["systemProxyReverted"] else "not set by llmtap"},
    ]  # fmt: skip
    rows += [{"action": "error", "result": error} for error in report["errors"]]
    return table(rows, ["action", "result"])


def _guess_shell() -> Shell:
    if sys.platform == "win32":
        return "powershell"
    name = Path(os.environ.get("SHELL", "bash")).name
    for shell in SHELLS:
        if shell == name:
            return shell
    return "bash"
