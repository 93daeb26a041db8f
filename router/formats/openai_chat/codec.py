"""The Chat Completions codec: the facade the router calls (its format's name, reply keys and
detection; every direction is forwarded by :class:`ModuleCodec`)."""

from __future__ import annotations

from typing import Any

from router.formats.codec import Codec, ModuleCodec
from router.formats.openai_chat import NAME, request, response, stream


class OpenAIChatCodec(ModuleCodec):
    name = NAME
    reply_keys = ("choices",)

    def detect_path(self, path: str, body: Any) -> bool:
        """A call to this format's endpoint (``path`` without query or trailing slash)."""
        return path.endswith("/chat/completions")

    def detect_body(self, body: Any) -> bool:
        """A body of this format, for a call whose path says nothing."""
        return isinstance(body, dict) and isinstance(body.get("messages"), list)

    def passthrough_body(self, body: dict[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
        out = {**body, "model": model}
        if stream:
            # The router needs usage to account the call (router.md case 5).
            out["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return out


CODEC: Codec = OpenAIChatCodec(request, response, stream)
