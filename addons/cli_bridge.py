"""CLI commands for AgentBridge: ``llmtap ca``, ``llmtap bridge``, ``llmtap agents`` and
``llmtap doctor``. They talk to the running server's API when there is one, otherwise to the
store and files directly (the same BridgeControl the API uses), where that makes sense."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any

from addons.cli_backend import backend, emit, leaf_parser, table
from router.errors import LlmtapError, NotFound
from router.settings import Settings

COMMANDS = frozenset({"ca", "bridge", "agents", "doctor"})
PREFIX = "/api/tools/agent-bridge"
NOT_RUNNING = "llmtap is not running; start it first with `llmtap up`"


def add_commands(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    leaf = leaf_parser(common, "print JSON instead of text")

    ca = sub.add_parser("ca", help="llmtap's certificate authority")
    casub = ca.add_subparsers(dest="action", required=True)
    leaf(casub, "show", "fingerprint, expiry, path, trusted")
    leaf(casub, "path", "print the CA certificate's path")
    leaf(casub, "trust", "add the CA to the OS trust store (needs root)")
    leaf(casub, "untrust", "remove the CA from the OS trust store (needs root)")
    leaf(casub, "regenerate", "new key pair; the running proxy switches at once")

    bridge = sub.add_parser("bridge", help="the AgentBridge :443 listener")
    bsub = bridge.add_subparsers(dest="action", required=True)
    leaf(bsub, "start", "start the listener and write the enabled agents' DNS lines")
    leaf(bsub, "stop", "remove the DNS lines, then stop the listener")
    leaf(bsub, "status", "listener state")

    agents = sub.add_parser("agents", help="the IDE agents AgentBridge knows")
    asub = agents.add_subparsers(dest="action", required=True)
    leaf(asub, "list", "agents, DNS state, divert support")
    leaf(asub, "enable", "redirect the agent's hosts to llmtap (hosts file)").add_argument("name")
    leaf(asub, "disable", "remove the agent's hosts-file lines").add_argument("name")
    amap = leaf(asub, "map", "map a model the agent asks for to a router target")
    amap.add_argument("name")
    amap.add_argument("source", help="the agent's model, or '*' for every model")
    amap.add_argument("target", help="provider/model, an alias or a combo")
    amap.add_argument("--effort", help="reasoning effort override: none|low|medium|high|xhigh")
    unmap = leaf(asub, "unmap", "remove one mapping")
    unmap.add_argument("name")
    unmap.add_argument("source")
    leaf(asub, "mappings", "list the agent's mappings").add_argument("name")
    route = leaf(asub, "route-all", "divert every chat call, mapped or not")
    route.add_argument("name")
    route.add_argument("state", choices=["on", "off"])

    leaf(sub, "doctor", "check the AgentBridge set-up, with a fix for each problem")


# --------------------------------------------------------------------------- backends


class LocalBridge:
    """The API's operations on the files and the store, for a stopped server."""

    via = "local"

    def __init__(self, settings: Settings) -> None:
        from router.bridge.control import BridgeControl
        from router.catalog import Catalog
        from router.store import combos, config, providers

        catalog = Catalog()
        catalog.set_connections(providers.list_all())
        catalog.set_combos(combos.list_all())
        catalog.set_aliases({a.alias: a.target for a in config.list_aliases()})
        self.control = BridgeControl.from_settings(settings, catalog)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        c = self.control
        b = body or {}
        parts = path.removeprefix(PREFIX).strip("/").split("/")
        match method, parts:
            case "GET", ["agents"]:
                return c.list_agents()
            case "POST", ["agents", agent, "dns"]:
                if b.get("enabled"):
                    # Without the running server nothing listens where the lines point.
                    raise LlmtapError(f"{NOT_RUNNING} (enabling DNS needs its listener)")
                return asyncio.run(c.set_dns(agent, False))
            case "POST", ["agents", agent, "route-all"]:
                return c.set_route_all(agent, bool(b.get("routeAll")))
            case "GET", ["agents", agent, "mappings"]:
                return c.mappings(agent)
            case "PUT", ["agents", agent, "mappings"]:
                items = [(m["source"], m["target"], m.get("effort")) for m in b["mappings"]]
                return c.put_mappings(agent, items)
            case "GET", ["state"]:
                return c.state() | {"running": False}
            case "POST", ["server"]:
                action = b.get("action")
                if action == "stop":
                    return asyncio.run(c.stop_server()) | {"running": False}
                if action == "trust-cert":
                    return c.certs.trust_ca()
                if action == "regenerate-cert":
                    return c.certs.regenerate()
                raise LlmtapError(f"{NOT_RUNNING} (the listener runs inside it)")
            case "GET", ["cert"]:
                return c.certs.cert_info()
            case "POST", ["cert"]:
                return c.certs.regenerate()
            case "POST", ["cert", "untrust"]:
                return c.certs.untrust_ca()
            case "GET", ["diagnose"]:
                return c.diagnose(server_running=False)
        raise LlmtapError(f"not available without a running server: {method} {path}")


def bridge_backend(settings: Settings) -> Any:
    # The bridge's offline commands write the CA and journal even before the first `up`.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return backend(settings, LocalBridge)


# --------------------------------------------------------------------------- commands


def _ca(args: argparse.Namespace, api: Any, settings: Settings) -> int:
    if args.action == "path":
        from certs import ca as ca_mod

        ca = ca_mod.load_or_create(settings.confdir)
        emit(args, {"path": str(ca.paths.cert)}, str(ca.paths.cert))
        return 0
    if args.action == "show":
        info = api.call("GET", f"{PREFIX}/cert")
        lines = [
            f"path         {info['path']}",
            f"fingerprint  {info['fingerprint']} (SHA-256)",
            f"subject      {info['subject']}",
            f"expires      {info['notAfter']}",
            f"trusted      {'yes' if info['trusted'] else 'no (llmtap ca trust)'}",
        ]
        emit(args, info, "\n".join(lines))
        return 0
    if args.action == "trust":
        result = api.call("POST", f"{PREFIX}/server", {"action": "trust-cert"})
        return _trust_report(args, result)
    if args.action == "untrust":
        result = api.call("POST", f"{PREFIX}/cert/untrust")
        return _trust_report(args, result)
    result = api.call("POST", f"{PREFIX}/cert", {"action": "regenerate"})
    text = f"new CA {result['fingerprint']}\n(was {result['previousFingerprint']})"
    if result.get("hint"):
        text += f"\n{result['hint']}"
    emit(args, result, text)
    return 0


def _trust_report(args: argparse.Namespace, result: dict[str, Any]) -> int:
    text = f"{result['status']}: {result['store']}"
    if result.get("detail"):
        text += f" ({result['detail']})"
    if result.get("nss"):
        text += "\nNSS databases: " + ", ".join(result["nss"])
    if result.get("guide") and result["status"] == "skipped":
        text += "\n\n" + result["guide"]
    emit(args, result, text)
    return 1 if result["status"] == "skipped" else 0


def _bridge(args: argparse.Namespace, api: Any) -> int:
    if args.action == "status":
        state = api.call("GET", f"{PREFIX}/state")
        text = (
            f"AgentBridge {'running' if state['running'] else 'stopped'} on port {state['port']}"
            f"  certReady: {'yes' if state['certReady'] else 'no'}"
            f"  intercepted: {state['interceptedCount']}"
            f"  active: {state['activeConnections']}"
        )
        if state.get("lastError"):
            text += f"\nlast error: {state['lastError']}"
        if state.get("note"):
            text += f"\n{state['note']}"
        emit(args, state, text)
        return 0
    state = api.call("POST", f"{PREFIX}/server", {"action": args.action})
    verb = "running" if state["running"] else "stopped"
    emit(args, state, f"AgentBridge {verb} (port {state['port']})")
    return 0


def _agents(args: argparse.Namespace, api: Any) -> int:
    if args.action == "list":
        rows = api.call("GET", f"{PREFIX}/agents")
        view = [
            r
            | {
                "dns": ("on" if r["dns_active"] else "enabled, no lines")
                if r["dns_enabled"]
                else "off",
                "divert": "yes" if r["divert"] else f"capture only: {r['capture_only_reason']}",
            }
            for r in rows
        ]
        emit(args, rows, table(view, ["agent_id", "dns", "mappings", "route_all", "divert"]))
        return 0
    name = args.name
    if args.action in ("enable", "disable"):
        result = api.call(
            "POST", f"{PREFIX}/agents/{name}/dns", {"enabled": args.action == "enable"}
        )
        lines = [f"{name}: DNS {'enabled' if args.action == 'enable' else 'disabled'}"]
        lines += [f"  + {line}" for line in result.get("hostsLinesAdded", [])]
        lines += [f"  - {line}" for line in result.get("hostsLinesRemoved", [])]
        for key in ("warning", "hint"):
            if result.get(key):
                lines.append(f"{key}: {result[key]}")
        emit(args, result, "\n".join(lines))
        return 0
    if args.action == "route-all":
        result = api.call(
            "POST", f"{PREFIX}/agents/{name}/route-all", {"routeAll": args.state == "on"}
        )
        emit(args, result, f"{name}: route all {args.state}")
        return 0
    current = api.call("GET", f"{PREFIX}/agents/{name}/mappings")
    if args.action == "mappings":
        emit(args, current, table(current, ["source_model", "target_model", "effort"]))
        return 0
    items = [
        {"source": m["source_model"], "target": m["target_model"], "effort": m.get("effort")}
        for m in current
    ]
    if args.action == "unmap":
        if not any(m["source"] == args.source for m in items):
            raise NotFound(f"{name} has no mapping for '{args.source}'")
        items = [m for m in items if m["source"] != args.source]
    else:
        new = {"source": args.source, "target": args.target, "effort": args.effort}
        items = [m for m in items if m["source"] != args.source] + [new]
    rows = api.call("PUT", f"{PREFIX}/agents/{name}/mappings", {"mappings": items})
    emit(args, rows, table(rows, ["source_model", "target_model", "effort"]))
    return 0


def _doctor(args: argparse.Namespace, api: Any) -> int:
    report = api.call("GET", f"{PREFIX}/diagnose")
    rows = [
        r | {"check": r["id"] + (f" ({r['agent']})" if r.get("agent") else "")}
        for r in report["checks"]
        if r["status"] != "skip" or args.json
    ]
    text = table(rows, ["check", "status", "detail"])
    fixes = [f"  {r['check']}: {r['fix']}" for r in rows if r["status"] == "fail" and r.get("fix")]
    if fixes:
        text += "\n\nfixes:\n" + "\n".join(fixes)
    emit(args, report, text)
    return 0 if report["ok"] else 1


def dispatch(
    args: argparse.Namespace, settings_fn: Callable[[argparse.Namespace], Settings]
) -> int:
    settings = settings_fn(args)
    with bridge_backend(settings) as api:
        if args.command == "ca":
            return _ca(args, api, settings)
        if args.command == "bridge":
            return _bridge(args, api)
        if args.command == "agents":
            return _agents(args, api)
        return _doctor(args, api)
