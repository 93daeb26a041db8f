"""The management subcommands of ``llmtap``: providers, keys, combos, token, status.

Each talks to the running server's API when ``data_dir/server.json`` names a live process,
otherwise straight to the database (the same store functions the API calls): see
:mod:`addons.cli_backend`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from addons.cli_backend import Backend, backend, cell, emit, leaf_parser, table
from router.errors import BadRequest, FieldError
from router.settings import Settings
from router.store.records import STRATEGIES

# --------------------------------------------------------------------------- parser


def add_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    leaf = leaf_parser(common, "print JSON instead of a table")

    prov = subparsers.add_parser("providers", help="provider connections")
    psub = prov.add_subparsers(dest="action", required=True)
    add = leaf(psub, "add", "add a provider connection")
    add.add_argument(
        "kind",
        choices=["openai", "anthropic", "gemini"],
        help="the provider kind (its URLs, auth and default wire format)",
    )
    add.add_argument(
        "url",
        help="base URL as the provider's docs or SDK give it, e.g. https://api.anthropic.com "
        "(the version segment is added when missing)",
    )
    key = add.add_mutually_exclusive_group()
    key.add_argument("--key", help="API key (visible in shell history; prefer --key-env)")
    key.add_argument("--key-env", metavar="VAR", help="read the API key from this env variable")
    add.add_argument("--name", help="connection name (default: the kind)")
    add.add_argument("--models", help="comma-separated model ids this connection serves")
    responses_help = (
        "the upstream serves OpenAI's /responses, so Responses calls pass through untranslated "
        "(openai kind; default: on for api.openai.com only)"
    )
    add.add_argument("--responses", action=argparse.BooleanOptionalAction, help=responses_help)
    pset = leaf(psub, "set", "change a provider connection")
    pset.add_argument("id")
    pset.add_argument("--responses", action=argparse.BooleanOptionalAction, help=responses_help)
    leaf(psub, "list", "list provider connections")
    leaf(psub, "test", "round trip to the upstream").add_argument("id", help="name or id")
    leaf(psub, "rm", "delete a provider connection").add_argument("id", help="name or id")

    keys = subparsers.add_parser("keys", help="router API keys")
    ksub = keys.add_subparsers(dest="action", required=True)
    leaf(ksub, "create", "create a key (shown once)").add_argument("label")
    leaf(ksub, "list", "list keys")
    leaf(ksub, "revoke", "deactivate a key").add_argument("id", help="label or id")

    combos = subparsers.add_parser("combos", help="routing combos")
    csub = combos.add_subparsers(dest="action", required=True)
    leaf(csub, "list", "list combos")
    cadd = leaf(csub, "add", "create a combo")
    cadd.add_argument("name")
    cadd.add_argument(
        "--strategy",
        default="priority",
        choices=STRATEGIES,
        metavar="STRATEGY",
        help=f"how nodes are picked: {', '.join(STRATEGIES)} (default priority)",
    )
    cadd.add_argument(
        "--node",
        action="append",
        required=True,
        metavar="CONN:MODEL[:WEIGHT]",
        help="a connection (id or name), the model to ask it for, an optional weight",
    )
    leaf(csub, "rm", "delete a combo").add_argument("id", help="name or id")

    leaf(subparsers, "token", "print the management token")
    leaf(subparsers, "status", "is llmtap running; what is configured")


# --------------------------------------------------------------------------- commands


def _node(spec: str, conns: list[dict[str, Any]]) -> dict[str, Any]:
    ref, sep, rest = spec.partition(":")
    if not sep or not ref or not rest:
        raise BadRequest(
            f"bad --node '{spec}'", [FieldError("node", "expected CONN:MODEL[:WEIGHT]")]
        )
    model, weight = rest, None
    head, sep, tail = rest.rpartition(":")
    if sep and head:
        try:
            model, weight = head, float(tail)
        except ValueError:
            pass  # "llama3:8b": the colon belongs to the model name
    match = [c["id"] for c in conns if ref in (c["id"], c["name"])]
    node: dict[str, Any] = {"connectionId": match[0] if match else ref, "model": model}
    if weight is not None:
        node["weight"] = weight
    return node


def _ref(api: Backend, what: str, ref: str) -> str:
    """The id of the provider connection / combo / key named (or labelled) ``ref``; an id is
    taken as is. Unknown refs pass through, so the API's 404 names them."""
    path, listing, name = {
        "providers": ("/api/providers", "connections", "name"),
        "combos": ("/api/combos", "combos", "name"),
        "keys": ("/api/keys", "keys", "label"),
    }[what]
    rows = api.call("GET", path)[listing]
    if any(r["id"] == ref for r in rows):
        return ref
    named = [r["id"] for r in rows if r.get(name) == ref]
    if len(named) > 1:
        raise BadRequest(f"'{ref}' names {len(named)} {what}: use the id", [FieldError(what, ref)])
    return named[0] if named else ref


def _providers(args: argparse.Namespace, api: Backend) -> int:
    if args.action == "add":
        body: dict[str, Any] = {"provider": args.kind, "url": args.url}
        key = args.key
        if args.key_env:
            key = os.environ.get(args.key_env)
            if not key:
                raise BadRequest(f"environment variable {args.key_env} is not set")
        if key:
            body["apiKey"] = key
        if args.name:
            body["name"] = args.name
        if args.models:
            body["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
        if args.responses is not None:
            body["supportsResponses"] = args.responses
        conn = api.call("POST", "/api/providers", body)
        text = f"added {conn['name']} ({conn['provider']}) -> {conn['url']}  id {conn['id']}"
        if conn["url"] != args.url:
            text += f"\n(base URL normalised from {args.url})"
        emit(args, conn, text)
    elif args.action == "set":
        patch: dict[str, Any] = {}
        if args.responses is not None:
            patch["supportsResponses"] = args.responses
        if not patch:
            raise BadRequest("nothing to change", [FieldError("responses", "give --responses")])
        conn = api.call("PATCH", f"/api/providers/{args.id}", patch)
        emit(args, conn, f"{conn['name']}: supportsResponses={conn['supportsResponses']}")
    elif args.action == "list":
        conns = api.call("GET", "/api/providers")["connections"]
        cols = ["id", "name", "provider", "url", "keyPreview", "isActive", "testStatus", "models"]
        cols += ["supportsResponses"]
        emit(args, conns, table(conns, cols))
    elif args.action == "test":
        result = api.call("POST", f"/api/providers/{_ref(api, 'providers', args.id)}/test")
        text = (
            f"ok ({result['latencyMs']} ms)" if result["ok"] else f"failed: {result.get('error')}"
        )
        emit(args, result, text)
        return 0 if result["ok"] else 1
    elif args.action == "rm":
        cid = _ref(api, "providers", args.id)
        emit(args, api.call("DELETE", f"/api/providers/{cid}"), f"deleted {args.id}")
    return 0


def _keys(args: argparse.Namespace, api: Backend) -> int:
    if args.action == "create":
        key = api.call("POST", "/api/keys", {"label": args.label})
        emit(args, key, f"{key['key']}\n(id {key['id']}; shown once, store it now)")
    elif args.action == "list":
        rows = api.call("GET", "/api/keys")["keys"]
        emit(args, rows, table(rows, ["id", "label", "keyPreview", "isActive", "createdAt"]))
    elif args.action == "revoke":
        key = api.call("PATCH", f"/api/keys/{_ref(api, 'keys', args.id)}", {"isActive": False})
        emit(args, key, f"revoked {key['id']} ({key['label']})")
    return 0


def _combos(args: argparse.Namespace, api: Backend) -> int:
    if args.action == "list":
        rows = api.call("GET", "/api/combos")["combos"]
        names = {c["id"]: c["name"] for c in api.call("GET", "/api/providers")["connections"]}

        def node(n: dict[str, Any], combo_model: str | None) -> str:
            target = names.get(n.get("connectionId") or "", n.get("connectionId"))
            if n.get("combo"):
                target = f"combo {n['combo']}"
            model = n.get("model") or combo_model or "-"
            return f"{target}/{model} x{n.get('weight', 1):g}"

        view = [r | {"nodes": [node(n, r.get("model")) for n in r["nodes"]]} for r in rows]
        emit(args, rows, table(view, ["id", "name", "strategy", "nodes"]))
    elif args.action == "add":
        conns = api.call("GET", "/api/providers")["connections"]
        body = {
            "name": args.name,
            "strategy": args.strategy,
            "nodes": [_node(spec, conns) for spec in args.node],
        }
        combo = api.call("POST", "/api/combos", body)
        emit(args, combo, f"added combo {combo['name']} ({combo['strategy']})  id {combo['id']}")
    elif args.action == "rm":
        cid = _ref(api, "combos", args.id)
        emit(args, api.call("DELETE", f"/api/combos/{cid}"), f"deleted {args.id}")
    return 0


def _status(args: argparse.Namespace, api: Backend, settings: Settings) -> int:
    counts = {
        "providers": len(api.call("GET", "/api/providers")["connections"]),
        "keys": len(api.call("GET", "/api/keys")["keys"]),
        "combos": len(api.call("GET", "/api/combos")["combos"]),
    }
    data: dict[str, Any] = {"running": api.via == "api", "dataDir": str(settings.data_dir)} | counts
    if api.via == "api":
        health = api.call("GET", "/api/monitoring/health")
        data |= {"version": health["version"], "uptimeSeconds": health["uptimeSeconds"],
                 "listeners": health["listeners"]}  # fmt: skip
    lines = [
        f"llmtap is {'running' if data['running'] else 'not running'} (data dir {settings.data_dir})"
    ]
    for item in data.get("listeners", []):
        lines.append(
            f"  {item['name']:<12} {item['host']}:{item['port']}  active: {cell(item['active'])}"
        )
    lines.append("  " + ", ".join(f"{n} {name}" for name, n in counts.items()))
    emit(args, data, "\n".join(lines))
    return 0


def dispatch(
    args: argparse.Namespace, settings_fn: Callable[[argparse.Namespace], Settings]
) -> int:
    settings = settings_fn(args)
    if args.command == "token":
        path = settings.data_dir / "token"
        if not path.exists():
            print("no management token yet: run `llmtap up` once", file=sys.stderr)
            return 1
        token = path.read_text().strip()
        emit(args, {"token": token}, token)
        return 0
    handlers = {"providers": _providers, "keys": _keys, "combos": _combos}
    with backend(settings) as api:
        if args.command == "status":
            return _status(args, api, settings)
        return handlers[args.command](args, api)
