"""The on-disk undo journal for OS changes (system proxy previous state and guard, hosts-file
lines added), written atomically so a crash never loses what must be undone."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)

# An adapter's saved settings: section (schema, registry value, network service) -> key -> value,
# None meaning "was not set" so restore deletes it rather than writing an empty value.
AdapterState = dict[str, dict[str, str | None]]

HISTORY_LIMIT = 200


class _Model(BaseModel):
    # Written by this and older/newer versions of llmtap: tolerate fields we don't know.
    model_config = ConfigDict(extra="ignore")


class ProxyEntry(_Model):
    platform: str
    host: str
    port: int
    guard_minutes: int
    applied_at: datetime
    guard_until: datetime
    previous: dict[str, AdapterState] = Field(default_factory=dict)


class HostsChange(_Model):
    at: datetime
    action: Literal["add", "remove"]
    lines: list[str]


class HostsEntry(_Model):
    added: list[str] = Field(default_factory=list)
    backup: str | None = None
    # The user's last line had no newline and llmtap gave it one to append after it: taken
    # back when the last marked line goes, so the file is restored byte for byte.
    newline_added: str | None = None
    history: list[HostsChange] = Field(default_factory=list)

    def record(self, action: Literal["add", "remove"], lines: list[str]) -> None:
        self.history.append(HostsChange(at=datetime.now(UTC), action=action, lines=lines))
        del self.history[:-HISTORY_LIMIT]


class JournalData(_Model):
    version: int = 1
    system_proxy: ProxyEntry | None = None
    hosts: dict[str, HostsEntry] = Field(default_factory=dict)  # keyed by hosts-file path


class Journal:
    """``data_dir/journal.json``. Read at start (and by ``repair``) to undo what a crashed
    process left behind. ``edit()`` is the read-modify-write used by every writer."""

    FILENAME = "journal.json"

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / self.FILENAME
        self._lock = threading.RLock()

    def read(self) -> JournalData:
        try:
            raw = self.path.read_text("utf-8")
        except FileNotFoundError:
            return JournalData()
        try:
            return JournalData.model_validate(json.loads(raw))
        except (ValueError, ValidationError):
            # Writes are atomic, so this is a hand-edited or foreign file. Keep it for the user
            # rather than overwrite it, and carry on: repair still removes every marked line.
            aside = self.path.with_name(
                f"{self.FILENAME}.corrupt-{int(datetime.now().timestamp())}"
            )
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            log.warning("undo journal %s was unreadable; moved it to %s", self.path, aside)
            return JournalData()

    def write(self, data: JournalData) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            payload = data.model_dump_json(indent=2).encode("utf-8")
            fd, tmp = tempfile.mkstemp(prefix=f".{self.FILENAME}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(payload)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            _fsync_dir(self.path.parent)

    @contextlib.contextmanager
    def edit(self) -> Iterator[JournalData]:
        """Read, let the caller change the data, write it back (only if no exception)."""
        with self._lock:
            data = self.read()
            yield data
            self.write(data)


def _fsync_dir(directory: Path) -> None:
    # The rename itself must survive a power cut, not only the file's bytes.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
