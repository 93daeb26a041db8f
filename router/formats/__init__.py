"""Wire-format codecs, one package per format, looked up by name.

Every package has the same modules: ``request.py``, ``response.py`` and ``stream.py`` (parse
and render side by side) and a small ``codec.py`` facade on :class:`codec.ModuleCodec` (the
:class:`Codec` protocol is in ``codec.py`` here); shared pieces are in ``common.py`` and SSE
framing in ``sse.py``.

Words (one per concept, everywhere in the code):

- **format**: the wire format of a request or reply body, one of :data:`FORMATS` (type
  :data:`Format`); each has one codec. In code: ``format`` on objects, ``fmt`` for a local or a
  parameter; ``source_format``/``target_format`` on a call (JSON ``sourceFormat``/
  ``targetFormat``). The inspector's record keeps the spec's JSON name ``llm.apiKind`` for it.
- **provider kind** (``openai``, ``anthropic``, ``gemini``): the upstream API family of a
  connection (its URLs, auth, error mapping); each kind speaks a default format
  (``Provider.format``), an ``openai`` connection may also speak ``responses``. JSON
  ``provider``.
- Other ``kind``s are other concepts: a record's ``detectedKind`` (llm/app/unknown), a custom
  host's kind, an upstream error's kind (its failure class), a stream delta's kind.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal, get_args

from router.formats.codec import Codec, StreamParser, StreamRenderer

__all__ = [
    "FORMATS",
    "Codec",
    "Format",
    "StreamParser",
    "StreamRenderer",
    "format_for_body",
    "format_for_path",
    "get_codec",
]

Format = Literal["openai-chat", "anthropic", "responses", "gemini", "cloudcode"]
FORMATS: tuple[Format, ...] = get_args(Format)

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


# Most specific first: the envelope before the bare format; a Responses body on the chat path
# before chat; Anthropic's body signature before the plainer chat one.
_PATH_ORDER = ("cloudcode", "gemini", "anthropic", "responses", "openai-chat")
_BODY_ORDER = ("cloudcode", "gemini", "responses", "anthropic", "openai-chat")


def format_for_path(path: str, body: Any = None) -> str | None:
    """The format whose codec claims a call to ``path`` (the body decides only between two
    formats that share a path); None when no codec does."""
    bare = path.partition("?")[0].rstrip("/")
    for name in _PATH_ORDER:  # a loop, not next(genexpr): this runs for every call
        if get_codec(name).detect_path(bare, body):
            return name
    return None


def format_for_body(body: Any) -> str | None:
    """The format whose codec recognises ``body``, for a call whose path says nothing."""
    return next((name for name in _BODY_ORDER if get_codec(name).detect_body(body)), None)
