"""peewee without the PostgreSQL drivers until a PostgreSQL database is made.

peewee's module imports every PostgreSQL driver that is installed (psycopg2 and psycopg 3, in
``try: import ...`` blocks) and keeps what it found in module globals and in its two driver
adapters' class attributes. On an install that has them (``llmtap[postgres]``, the test and
bench environments) that was about a quarter of ``llmtap up``'s start-up and ~10 MB, paid by
every SQLite process. :func:`import_peewee` imports peewee with those drivers hidden (peewee
sees them as not installed); :func:`use_postgres_drivers` imports them and hands them to
peewee as its own import would have, before a PostgreSQL database object is made (peewee
picks its adapter when one is made). ``tests/router/store/test_drivers.py`` holds the result
to a plain ``import peewee``.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

# What peewee's module tries at import.
_DRIVERS = ("psycopg2cffi", "psycopg2", "psycopg")


def import_peewee() -> ModuleType:
    """peewee; imported, the first time, without the PostgreSQL drivers."""
    found = sys.modules.get("peewee")
    if found is not None:
        return found
    hidden = [name for name in _DRIVERS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes the import fail
    try:
        import peewee
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return peewee


def use_postgres_drivers() -> None:
    """Give peewee the PostgreSQL drivers that are installed, as its own import does."""
    import peewee

    if getattr(peewee, "psycopg", None) is None:
        try:
            import psycopg
            from psycopg.pq import TransactionStatus
            from psycopg.types.json import Json, Jsonb
        except ImportError:
            pass
        else:
            _bind(peewee, psycopg=psycopg, TransactionStatus=TransactionStatus)
            _bind(peewee, Json_pg3=Json, Jsonb_pg3=Jsonb)
            _bind(
                peewee.Psycopg3Adapter,
                txn_idle=TransactionStatus.IDLE,
                txn_inerror=TransactionStatus.INERROR,
                txn_unknown=TransactionStatus.UNKNOWN,
            )
    if getattr(peewee, "psycopg2", None) is None:
        try:
            from psycopg2cffi import compat

            compat.register()
        except ImportError:
            pass
        try:
            import psycopg2
            from psycopg2 import extensions
            from psycopg2.extras import Json as Json2
            from psycopg2.extras import register_uuid
        except ImportError:
            pass
        else:
            register_uuid()
            _bind(peewee, psycopg2=psycopg2, pg_extensions=extensions)
            _bind(peewee, pg_register_uuid=register_uuid, Json_pg2=Json2)
            _bind(
                peewee.Psycopg2Adapter,
                txn_idle=extensions.TRANSACTION_STATUS_IDLE,
                txn_inerror=extensions.TRANSACTION_STATUS_INERROR,
                txn_unknown=extensions.TRANSACTION_STATUS_UNKNOWN,
            )


def _bind(target: Any, **names: Any) -> None:
    for name, value in names.items():
        setattr(target, name, value)
