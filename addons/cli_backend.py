"""What every ``llmtap`` subcommand module shares: where a command's calls go (the running
server's API when ``data_dir/server.json`` names a live process, otherwise the database or the
files directly: :func:`backend`), the one liveness rule (:func:`running_server`), and output
(:func:`emit`, :func:`table`, the :func:`leaf_parser` every subcommand is declared with)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from router.errors import BadRequest, Conflict, FieldError, LlmtapError, NotFound
from router.settings import Settings

TOKEN_HEADER = "X-Llmtap-Token"  # web/security.py


def leaf_parser(
    common: Callable[[argparse.ArgumentParser], None], json_help: str
) -> Callable[[Any, str, str], argparse.ArgumentParser]:
    """How a module declares its subcommands: each takes the common options and ``--json``."""

    def leaf(parent: Any, name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, help=help_text)
        common(p)
        p.add_argument("--json", action="store_true", help=json_help)
        return p

    return leaf


# --------------------------------------------------------------------------- backends


class Backend(Protocol):
    via: str

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any: ...


def server_state(data_dir: Path) -> tuple[int, str, int] | None:
    """(pid, host, port) from server.json when that pid is alive."""
    try:
        state = json.loads((data_dir / "server.json").read_text())
        pid, host, port = int(state["pid"]), str(state["host"]), int(state["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by someone else
    return pid, host, port


def llmtap_on_port(port: int) -> int | None:
    """The pid of an ``llmtap up`` listening on ``port`` (any data dir), if psutil can see it."""
    if not _port_taken(port):
        return None  # nobody listens there: spare the walk of every process's sockets
    import psutil

    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port != port:
                continue
            if conn.pid and conn.pid != os.getpid():
                argv = psutil.Process(conn.pid).cmdline()
                words = {os.path.basename(a) for a in argv}
                if "up" in words and ({"llmtap", "addons.main"} & words):
                    return conn.pid
    except (psutil.Error, OSError):
        return None
    return None


def _port_taken(port: int) -> bool:
    """Something may hold ``port``: a wildcard bind to it fails (dual-stack where there is
    IPv6, so a listener on any IPv4 or IPv6 address counts). A bind is one system call;
    psutil's answer reads every process's file descriptors (tens of ms on a busy machine)."""
    family = socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            probe.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", port))
    except OSError:
        return True  # in use, or not ours to test: ask psutil
    return False


def refuse_second_instance(settings: Settings) -> None:
    """``up`` stops here, in one line, when llmtap already runs on this data dir (its
    server.json names a live pid) or on the port asked for."""
    state = server_state(settings.data_dir)
    if state is not None and state[0] != os.getpid():
        pid, _host, port = state
        raise Conflict(
            f"llmtap is already running (pid {pid}, port {port}) with data dir {settings.data_dir}"
        )
    pid_on_port = llmtap_on_port(settings.port) if settings.port else None
    if pid_on_port is not None:
        raise Conflict(f"llmtap is already running (pid {pid_on_port}, port {settings.port})")


def running_server(data_dir: Path) -> tuple[str, int] | None:
    """(host, port) of the live server of ``data_dir``, from server.json."""
    state = server_state(data_dir)
    if state is None:
        return None
    _pid, host, port = state
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return host, port


class ApiBackend:
    via = "api"

    def __init__(self, host: str, port: int, token: str | None) -> None:
        url_host = f"[{host}]" if ":" in host else host
        headers = {"Content-Type": "application/json"}
        if token:
            headers[TOKEN_HEADER] = token
        import httpx  # only the commands that talk to a running server need it

        self.client = httpx.Client(
            base_url=f"http://{url_host}:{port}", headers=headers, timeout=60
        )

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        content = json.dumps(body if body is not None else {}).encode()
        resp = self.client.request(method, path, content=content)
        data = resp.json() if resp.content else {}
        if resp.status_code >= 400:
            err = data.get("error", {}) if isinstance(data, dict) else {}
            message = err.get("message") or f"HTTP {resp.status_code}"
            details = [FieldError(d["field"], d["message"]) for d in err.get("details") or []]
            if resp.status_code == 404:
                raise NotFound(message)
            raise BadRequest(message, details) if details else LlmtapError(message)
        return data


class DbBackend:
    """The same operations as the API, on the database (the server is not running)."""

    via = "db"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        result = self._call(method, path, body)
        if method != "GET":
            from router.store.shared import announce_change

            announce_change()  # gateway instances on this database reload (no-op on SQLite)
        return result

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        from router.store import combos, keys, providers
        from router.store.records import (
            ComboCreate,
            ProviderConnectionCreate,
            ProviderConnectionPatch,
        )

        parts = path.strip("/").split("/")[1:]  # drop "api"
        match method, parts:
            case "GET", ["providers"]:
                return {"connections": [_public(c) for c in providers.list_all()]}
            case "POST", ["providers"]:
                return _public(providers.create(_validated(ProviderConnectionCreate, body)))
            case "PATCH", ["providers", cid]:
                return _public(providers.update(cid, _validated(ProviderConnectionPatch, body)))
            case "DELETE", ["providers", cid]:
                providers.delete(cid)
                return {"deleted": True}
            case "POST", ["providers", cid, "test"]:
                return self._test(cid)
            case "GET", ["keys"]:
                return {"keys": [_public(k) for k in keys.list_all()]}
            case "POST", ["keys"]:
                record, full = keys.create(str((body or {}).get("label", "")))
                return _public(record) | {"key": full}
            case "PATCH", ["keys", kid]:
                return _public(keys.update(kid, is_active=bool((body or {}).get("isActive"))))
            case "GET", ["combos"]:
                return {"combos": [_public(c) for c in combos.list_all()]}
            case "POST", ["combos"]:
                return _public(combos.create(_validated(ComboCreate, body)))
            case "DELETE", ["combos", cid]:
                combos.delete(cid)
                return {"deleted": True}
        raise LlmtapError(f"not available without a running server: {method} {path}")

    def _test(self, cid: str) -> dict[str, Any]:
        from router.errors import UpstreamError
        from router.providers import list_models, make_client
        from router.store import providers

        conn = providers.get(cid)

        async def roundtrip() -> list[str]:
            client = make_client(
                upstream_ca=self.settings.upstream_ca,
                connect_timeout=self.settings.connect_timeout_s,
            )
            async with client:
                return await list_models(client, conn)

        started = time.perf_counter()
        try:
            models = asyncio.run(roundtrip())
        except UpstreamError as exc:
            providers.set_test_status(cid, "error")
            latency = round((time.perf_counter() - started) * 1000, 1)
            return {"ok": False, "latencyMs": latency, "error": exc.message}
        providers.set_test_status(cid, "active")
        providers.set_cached_models(cid, models)
        latency = round((time.perf_counter() - started) * 1000, 1)
        return {"ok": True, "latencyMs": latency, "models": len(models)}


def _public(record: Any) -> dict[str, Any]:
    data: dict[str, Any] = record.model_dump(by_alias=True, mode="json")
    return data


def _validated(model: Any, body: dict[str, Any] | None) -> Any:
    from web.validation import parse_body

    return parse_body(model, body or {})


@contextmanager
def backend(settings: Settings, offline: Callable[[Settings], Any] | None = None) -> Iterator[Any]:
    """The running server's API when llmtap is up, else ``offline(settings)`` (default: the
    database backend) on the data dir's own database."""
    found = running_server(settings.data_dir)
    if found is not None:
        token_path = settings.data_dir / "token"
        token = token_path.read_text().strip() if token_path.exists() else None
        api = ApiBackend(*found, token)
        try:
            yield api
        finally:
            api.client.close()
        return
    from router.store.db import close_database, open_database

    open_database(settings.database)
    try:
        yield (offline or DbBackend)(settings)
    finally:
        close_database()


# --------------------------------------------------------------------------- output


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def cell(value: Any) -> str:
    """A value as one table cell: ``-`` for none, yes/no, lists comma-joined."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(cell(v) for v in value) or "-"
    return str(value)


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)
