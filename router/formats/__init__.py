"""Wire-format codecs, one package per format, looked up by name.

Every package has the same modules: ``request.py``, ``response.py`` and ``stream.py`` (parse
and render side by side) and a small ``codec.py`` facade; shared pieces are in ``common.py``
and SSE framing in ``sse.py``.
"""

from __future__ import annotations

import importlib

from router.formats.common import Codec, StreamParser, StreamRenderer

__all__ = ["FORMATS", "Codec", "StreamParser", "StreamRenderer", "get_codec"]

FORMATS = ("openai-chat", "anthropic", "responses", "gemini", "cloudcode")

# format id -> (module, attribute); imported on first use so a codec costs nothing until used.
_WHERE = {
    "openai-chat": ("router.formats.openai_chat.codec", "CODEC"),
    "anthropic": ("router.formats.anthropic.codec", "CODEC"),
    "responses": ("router.formats.responses.codec", "CODEC"),
    "gemini": ("router.formats.gemini.codec", "CODEC"),
    "cloudcode": ("router.formats.gemini.codec", "CLOUDCODE_CODEC"),
}
_cache: dict[str, Codec] = {}


def get_codec(name: str) -> Codec:
    """The codec for a format id; ``KeyError`` for an unknown one."""
    codec = _cache.get(name)
    if codec is None:
        module, attr = _WHERE[name]
        codec = _cache[name] = getattr(importlib.import_module(module), attr)
    return codec
