"""Move a whole store from one database to another (``llmtap db copy``): a user who starts
alone on SQLite moves to the team's PostgreSQL, or back.

Rows go through the table models, so each engine gets its own types (SQLite's 0/1 become
PostgreSQL booleans and back); ids are kept, and PostgreSQL's id sequences are moved past
them. Runtime state that means nothing on another server (breakers, cooldowns, leases, the
change counter) is not copied.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import peewee

from router.errors import Conflict
from router.store import migrations
from router.store.db import make_database
from router.store.sql import execute
from router.store.tables import ALL_TABLES

BATCH = 500


def _ordered() -> list[type[peewee.Model]]:
    """Parents before children (foreign keys), otherwise the declared order."""
    done: list[type[peewee.Model]] = []
    pending = list(ALL_TABLES)
    while pending:
        for table in pending:
            parents = {fk.rel_model for fk in table._meta.refs}
            if parents <= set(done) | {table}:
                done.append(table)
                pending.remove(table)
                break
        else:  # pragma: no cover - a cycle in the schema
            raise RuntimeError("foreign keys form a cycle")
    return done


def copy(
    source: Path | str,
    target: Path | str,
    *,
    progress: Callable[[str, int], object] | None = None,
) -> dict[str, int]:
    """Copy every table of ``source`` into ``target``; both are migrated first and the target
    must hold no rows. Returns rows copied per table."""
    src, dst = make_database(source), make_database(target)
    counts: dict[str, int] = {}
    tables = _ordered()
    try:
        migrations.apply(src)
        migrations.apply(dst)
        with dst.bind_ctx(tables):
            busy = [t._meta.table_name for t in tables if t.select().exists()]
        if busy:
            raise Conflict(
                "the target database already holds data (" + ", ".join(busy) + "); "
                "copy into an empty one"
            )
        with dst.atomic():
            for table in tables:
                with src.bind_ctx([table]):
                    rows = [cast(dict[str, Any], r) for r in table.select().dicts()]
                with dst.bind_ctx([table]):
                    for start in range(0, len(rows), BATCH):
                        table.insert_many(rows[start : start + BATCH]).execute()
                counts[table._meta.table_name] = len(rows)
                if progress is not None:
                    progress(table._meta.table_name, len(rows))
            if dst.param != "?":
                for table in tables:
                    pk = table._meta.primary_key
                    if isinstance(pk, peewee.AutoField):
                        name = table._meta.table_name
                        execute(
                            dst,
                            f"SELECT setval(pg_get_serial_sequence('{name}', '{pk.column_name}'),"
                            f" COALESCE((SELECT MAX({pk.column_name}) FROM {name}), 0) + 1, false)",
                        )
    finally:
        src.close()
        dst.close()
    return counts
