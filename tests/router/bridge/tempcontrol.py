"""A real BridgeControl on a throwaway machine: a temp hosts file holding the user's own
lines, a recording fake ``resolvectl`` and a fresh SQLite store, all under one temp dir."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from router.bridge.control import BridgeControl
from router.catalog import Catalog
from router.settings import build
from router.store.db import close_database, open_database
from tests.router.bridge.fakeos import FakeOS


@contextlib.contextmanager
def temp_control(
    tmp_path: Path, user_hosts: bytes, catalog: Catalog | None = None
) -> Iterator[BridgeControl]:
    """The control, its store open for the ``with`` block."""
    hosts = tmp_path / "hosts"
    hosts.write_bytes(user_hosts)
    fake = FakeOS(tmp_path / "os", ("resolvectl",))
    settings = build(
        cli={"data_dir": tmp_path / "data", "hosts_file": hosts, "tools_path": str(fake.bin)},
        env={},
    )
    settings.data_dir.mkdir()
    open_database(settings.db_path)
    try:
        yield BridgeControl.from_settings(settings, catalog)
    finally:
        close_database()
