"""Golden request fixtures: what the real agent binaries send, and what each codec makes of it.

``tests/fixtures/agents/<agent>.json`` holds the requests one pinned agent release sent for
``say hi`` when pointed straight at the fake upstream in its own wire format (captured by
``test_golden.py`` itself). Before storing, secrets are masked with the inspector's masker,
the per-run noise (temp paths, UUIDs, dates) is replaced by placeholders and long strings
(system prompts, tool descriptions) are cut, so the files stay small and stable.

``tests/fixtures/agents/expected/<agent>.json`` holds, per captured call and per codec, the
body the router renders upstream from it (parse with the agent's codec -> IR -> render with the
target codec) and the fields the render reports as dropped.

``LLMTAP_REGEN_GOLDEN=1`` rewrites both instead of comparing; review the diff like code.
A client release that adds a field changes the request's shape (the capture test fails until
regenerated) and, once regenerated, shows in the expected renders as a new dropped field or a
new key in the diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from router.traffic.masking import mask_json, mask_secret

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "agents"
EXPECTED = FIXTURES / "expected"
RENDER_TO = ("openai-chat", "anthropic", "responses", "gemini", "cloudcode")
GOLDEN_MODEL = "golden-model"
MAX_STRING = 240

# Request headers worth keeping: they carry protocol versions and features a router must
# forward or understand. Everything else (user agents with OS details, ids) is left out.
KEEP_HEADERS = ("anthropic-version", "anthropic-beta", "content-type", "openai-beta", "accept")
SECRET_HEADERS = ("authorization", "x-api-key", "x-goog-api-key")

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")
_HEX = re.compile(r"\b[0-9a-f]{32,}\b")


def regen() -> bool:
    return os.environ.get("LLMTAP_REGEN_GOLDEN") == "1"


def _scrub(text: str, home: str) -> str:
    text = text.replace(home, "<HOME>")
    text = _UUID.sub("<uuid>", text)
    text = _DATE.sub("<date>", text)
    text = _HEX.sub("<hex>", text)
    if len(text) > MAX_STRING:
        text = f"{text[:MAX_STRING]}…[{len(text)} chars]"
    return text


def normalize(value: Any, home: str) -> Any:
    """Masked, placeholder-scrubbed, shortened copy of a JSON value."""
    value = mask_json(value)

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return _scrub(v, home)
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(value)


def capture_call(path: str, headers: dict[str, str], body: Any, home: str) -> dict[str, Any]:
    kept = {k: headers[k] for k in KEEP_HEADERS if k in headers}
    kept |= {k: mask_secret(headers[k]) for k in SECRET_HEADERS if k in headers}
    return {"path": _scrub(path, home), "headers": kept, "body": normalize(body, home)}


def shape(value: Any, prefix: str = "$") -> set[str]:
    """Every key path with its JSON type, list items merged: what a new field changes."""
    out: set[str] = set()
    if isinstance(value, dict):
        out.add(f"{prefix}:object")
        for k, v in value.items():
            out |= shape(v, f"{prefix}.{k}")
    elif isinstance(value, list):
        out.add(f"{prefix}:array")
        for v in value:
            out |= shape(v, f"{prefix}[]")
    else:
        out.add(f"{prefix}:{type(value).__name__}")
    return out


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def checked_in(path: Path, live: Any) -> Any | None:
    """What is committed at ``path``, for ``live`` to be compared with; with
    LLMTAP_REGEN_GOLDEN=1, None after writing ``live`` there instead (review the diff)."""
    if regen():
        dump(path, live)
        return None
    assert path.exists(), f"no {path}; run with LLMTAP_REGEN_GOLDEN=1 and review it"
    return load(path)


def dump(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
