"""``llmtap db``: the store's schema (``migrate``, ``status``) and moving it between databases
(``copy --from sqlite:///... --to postgresql://...``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from addons.cli_backend import emit
from router.errors import BadRequest, FieldError
from router.settings import Settings

COMMANDS = frozenset({"db"})


def add_commands(sub: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    db = sub.add_parser("db", help="the database: schema version, migrations, moving it")
    dsub = db.add_subparsers(dest="action", required=True)
    for name, text in (
        ("migrate", "bring the database's schema up to date (instances also do it at start)"),
        ("status", "which database, its schema version, rows per table"),
    ):
        p = dsub.add_parser(name, help=text)
        common(p)
        p.add_argument("--json", action="store_true", help="print JSON")
    cp = dsub.add_parser("copy", help="copy every table from one database into another, empty one")
    common(cp)
    cp.add_argument("--from", dest="source", required=True, metavar="URL",
                    help="sqlite:///PATH or postgresql://... to read")  # fmt: skip
    cp.add_argument("--to", dest="target", required=True, metavar="URL",
                    help="sqlite:///PATH or postgresql://... to fill (must be empty)")  # fmt: skip
    cp.add_argument("--json", action="store_true", help="print JSON")


def dispatch(
    args: argparse.Namespace, settings_fn: Callable[[argparse.Namespace], Settings]
) -> int:
    from router.store import migrations
    from router.store.db import (
        close_database,
        connect,
        database,
        engine,
        engine_of,
        redact_url,
    )

    if args.action == "copy":
        return _copy(args)
    settings = settings_fn(args)
    where = redact_url(str(settings.database))
    connect(settings.database)
    try:
        if args.action == "migrate":
            before = migrations.current_version(database)
            after = migrations.apply(database)
            data = {"database": where, "from": before, "to": after}
            emit(args, data, f"{where}: schema {before} -> {after}")
            return 0
        version = migrations.current_version(database)
        latest = len(migrations.MIGRATIONS)
        counts = _counts() if version == latest else {}
        data = {
            "database": where,
            "engine": engine(),
            "schemaVersion": version,
            "latest": latest,
            "pending": max(latest - version, 0),
            "rows": counts,
        }
        lines = [f"{where} ({engine_of(settings.database)})",
                 f"  schema {version} of {latest}"
                 + (f", {latest - version} pending: run `llmtap db migrate`"
                    if version < latest else "")]  # fmt: skip
        lines += [f"  {name:<20} {n}" for name, n in counts.items()]
        emit(args, data, "\n".join(lines))
        return 0
    finally:
        close_database()


def _counts() -> dict[str, int]:
    from router.store.tables import ALL_TABLES

    return {t._meta.table_name: int(t.select().count()) for t in ALL_TABLES}


def _copy(args: argparse.Namespace) -> int:
    from router.store.db import engine_of, redact_url
    from router.store.transfer import copy

    for field, url in (("from", args.source), ("to", args.target)):
        engine_of(url)  # 400 for what is neither
        if field == "from" and engine_of(url) == "sqlite":
            path = Path(url.split("sqlite:///", 1)[-1])
            if not path.exists():
                raise BadRequest(f"no SQLite database at {path}", [FieldError("from", url)])
    if args.source == args.target:
        raise BadRequest("--from and --to name the same database", [FieldError("to", args.target)])

    def progress(table: str, rows: int) -> None:
        if not args.json:
            print(f"  {table:<20} {rows}", flush=True)

    if not args.json:
        print(f"copying {redact_url(args.source)} -> {redact_url(args.target)}", flush=True)
    counts = copy(args.source, args.target, progress=progress)
    total = sum(counts.values())
    emit(args, {"tables": counts, "rows": total}, f"copied {total} rows")
    return 0
