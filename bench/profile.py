"""py-spy profiles of a missed target: record a running pid, fold the raw stacks into hot spots."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.arms import VENV_BIN

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+?)(?::\d+)?\)$")


@dataclass
class Profile:
    label: str
    samples: int = 0
    self_top: list[tuple[str, float]] = field(default_factory=list)  # (frame, % of samples)
    inclusive_top: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None

    @classmethod
    def missing(cls, reason: str) -> Profile:
        return cls(label="", error=reason)

    @classmethod
    def from_raw(cls, path: Path, label: str, top: int = 12) -> Profile:
        if not path.exists():
            return cls(label, error="py-spy wrote no profile")
        return fold(path.read_text(errors="replace"), label, top)


def _short(frame: str) -> str:
    """``func (path/to/site-packages/pkg/mod.py:12)`` -> ``func (pkg/mod.py)``."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    file = m.group("file")
    for marker in ("site-packages/", "/work/main/", "lib/python3.12/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({file})"


_PLUMBING = ("(asyncio/", "(threading.py)", "(runpy.py)", "(addons/main.py)", "(<frozen ")


def _is_plumbing(frame: str) -> bool:
    """Event-loop and entry frames sit under every sample; they say nothing inclusive."""
    return any(p in frame for p in _PLUMBING) or frame.startswith("<module>")


def fold(raw: str, label: str, top: int = 12) -> Profile:
    """Fold py-spy ``--format raw`` lines (``f1;f2;...;fN count``) into self and inclusive
    shares; idle frames (selector waits) are kept, since idle time is part of the story."""
    self_c: Counter[str] = Counter()
    incl_c: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += n
        self_c[frames[-1]] += n
        for f in set(frames):
            if not _is_plumbing(f):
                incl_c[f] += n
    if total == 0:
        return Profile(label, error="no samples")
    return Profile(
        label,
        total,
        [(f, 100 * c / total) for f, c in self_c.most_common(top)],
        [(f, 100 * c / total) for f, c in incl_c.most_common(top)],
    )


def profile_pid(pid: int, seconds: float, out: Path) -> Profile:
    exe = VENV_BIN / "py-spy"
    if not exe.exists() and not shutil.which("py-spy"):
        return Profile.missing("py-spy not installed")
    argv = [str(exe if exe.exists() else "py-spy"), "record", "-p", str(pid), "-r", "200"]
    argv += ["-d", str(max(1, int(seconds))), "-f", "raw", "-o", str(out), "--nonblocking"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if not out.exists():
        return Profile(f"pid {pid}", error=(done.stderr or "py-spy failed").strip()[-300:])
    return Profile.from_raw(out, f"llmtap pid under load, {seconds:.0f} s (py-spy)")
