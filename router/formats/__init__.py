"""Wire-format codecs, one module per format, looked up by name."""

from __future__ import annotations

import importlib

from router.formats.base import Codec

FORMATS = ("openai-chat", "anthropic", "responses", "gemini", "cloudcode")

# format id -> (module, attribute); imported on first use so a codec costs nothing until used.
_WHERE = {
    "openai-chat": ("router.formats.openai_chat", "CODEC"),
    "anthropic": ("router.formats.anthropic", "CODEC"),
    "responses": ("router.formats.responses", "CODEC"),
    "gemini": ("router.formats.gemini", "CODEC"),
    "cloudcode": ("router.formats.gemini", "CLOUDCODE_CODEC"),
}
_cache: dict[str, Codec] = {}


def get_codec(name: str) -> Codec:
    """The codec for a format id; ``KeyError`` for an unknown one."""
    codec = _cache.get(name)
    if codec is None:
        module, attr = _WHERE[name]
        codec = _cache[name] = getattr(importlib.import_module(module), attr)
    return codec
