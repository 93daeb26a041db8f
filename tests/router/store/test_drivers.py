"""router/store/drivers.py: peewee imported without the PostgreSQL drivers, and handed them
when a PostgreSQL database is made, ends up as a plain ``import peewee`` would have been.
Each state is taken in a fresh interpreter (this one may have imported peewee already)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

# What peewee's driver import touches, as a fresh interpreter sees it: every module global
# that is a driver module or comes from one, and the adapters' driver constants.
SNAPSHOT = r"""
import json, sys, types
{setup}
import peewee

def shown(value):
    if isinstance(value, types.ModuleType):
        return "module " + value.__name__
    owner = getattr(value, "__module__", None) or type(value).__module__
    return f"{{owner}}:{{getattr(value, '__qualname__', repr(value))}}"

def from_driver(value):
    owner = value.__name__ if isinstance(value, types.ModuleType) else (
        getattr(value, "__module__", None) or type(value).__module__)
    return isinstance(owner, str) and owner.startswith(("psycopg", "psycopg2"))

out = {{name: shown(v) for name, v in vars(peewee).items() if from_driver(v)}}
for name in ("psycopg", "psycopg2", "Json_pg3", "Json_pg2"):
    out.setdefault(name, shown(getattr(peewee, name)))
for cls in (peewee.Psycopg2Adapter, peewee.Psycopg3Adapter):
    for attr in ("txn_idle", "txn_inerror", "txn_unknown"):
        out[cls.__name__ + "." + attr] = repr(getattr(cls, attr))
out["drivers loaded"] = sorted(m for m in sys.modules if m in ("psycopg", "psycopg2"))
print(json.dumps(out))
"""


def _state(setup: str) -> dict[str, object]:
    code = SNAPSHOT.format(setup=setup)
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    state: dict[str, object] = json.loads(run.stdout)
    return state


def test_peewee_given_the_drivers_later_matches_a_plain_import() -> None:
    pytest.importorskip("psycopg")
    plain = _state("")
    hidden = _state("import router.store")
    given = _state(
        "import router.store\nfrom router.store.drivers import use_postgres_drivers\n"
        "use_postgres_drivers()"
    )
    assert plain["psycopg"] == "module psycopg"  # the comparison is not vacuous
    assert hidden["psycopg"] == "builtins:None"
    assert hidden["drivers loaded"] == []
    assert given == plain


def test_a_postgresql_database_gets_psycopg_3_after_a_sqlite_start() -> None:
    """No server needed: peewee picks its driver adapter when the database object is made."""
    pytest.importorskip("psycopg")
    code = (
        "import sys\n"
        "from router.store import db\n"
        "db.make_database('sqlite:///:memory:')\n"
        "assert 'psycopg' not in sys.modules\n"
        "pg = db.make_database('postgresql://llmtap@127.0.0.1:1/llmtap')\n"
        "print(type(pg._adapter).__name__, pg._adapter.txn_idle is not None)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["Psycopg3Adapter", "True"]
