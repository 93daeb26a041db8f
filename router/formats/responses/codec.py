"""The Responses codec: the facade the router calls (its format's name, reply keys and
detection; every direction is forwarded by :class:`ModuleCodec`)."""

from __future__ import annotations

from typing import Any

from router.formats.codec import Codec, ModuleCodec
from router.formats.responses import NAME, request, response, stream


class ResponsesCodec(ModuleCodec):
    name = NAME
    reply_keys = ("output",)

    def detect_path(self, path: str, body: Any) -> bool:
        """A call to this format's endpoint (``path`` without query or trailing slash); also
        ``input`` without ``messages`` on ``/chat/completions``, which is a Responses body."""
        if path.endswith("/responses") or "/responses/" in path:
            return True
        return path.endswith("/chat/completions") and self.detect_body(body)

    def detect_body(self, body: Any) -> bool:
        """A body of this format, for a call whose path says nothing."""
        return isinstance(body, dict) and "input" in body and "messages" not in body


CODEC: Codec = ResponsesCodec(request, response, stream)
