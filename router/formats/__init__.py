"""Wire-format codecs, one module per format, looked up by name."""

from __future__ import annotations

from router.formats.base import Codec

FORMATS = ("openai-chat", "anthropic", "responses", "gemini", "cloudcode")


def get_codec(name: str) -> Codec:
    """The codec for a format id (``openai-chat``, ``anthropic``, ``responses``, ``gemini``,
    ``cloudcode``). Imported lazily so a codec's import cost is paid only when used."""
    if name == "openai-chat":
        from router.formats.openai_chat import CODEC
    elif name == "anthropic":
        from router.formats.anthropic import CODEC
    elif name == "responses":
        from router.formats.responses import CODEC
    elif name == "gemini":
        from router.formats.gemini import CODEC
    elif name == "cloudcode":
        from router.formats.gemini import CLOUDCODE_CODEC as CODEC
    else:
        raise KeyError(name)
    return CODEC
