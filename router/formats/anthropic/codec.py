"""The Anthropic codec: the facade the router calls (its format's name, reply keys and
detection; every direction is forwarded by :class:`ModuleCodec`)."""

from __future__ import annotations

from typing import Any

from router.formats.anthropic import NAME, request, response, stream
from router.formats.codec import Codec, ModuleCodec


class AnthropicCodec(ModuleCodec):
    name = NAME
    reply_keys = ("content",)

    def detect_path(self, path: str, body: Any) -> bool:
        """A call to this format's endpoint (``path`` without query or trailing slash)."""
        return path.endswith(("/messages", "/messages/count_tokens"))

    def detect_body(self, body: Any) -> bool:
        """A body of this format, for a call whose path says nothing: messages beside a
        top-level system or a version, or with Anthropic's tool blocks."""
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return False
        if "system" in body or "anthropic_version" in body:
            return True
        return any(
            isinstance(block, dict) and block.get("type") in ("tool_use", "tool_result")
            for message in body["messages"]
            if isinstance(message, dict) and isinstance(message.get("content"), list)
            for block in message["content"]
        )


CODEC: Codec = AnthropicCodec(request, response, stream)
