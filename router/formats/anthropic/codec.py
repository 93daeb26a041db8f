"""The Anthropic codec: the facade the router calls, one method per direction."""

from __future__ import annotations

from typing import Any

from router import ir
from router.formats.anthropic import NAME, request, response, stream
from router.formats.common import Codec


class AnthropicCodec:
    name = NAME

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

    def parse_request(self, body: dict[str, Any]) -> ir.Request:
        return request.parse_request(body)

    def render_request(self, req: ir.Request) -> dict[str, Any]:
        return request.render_request(req)

    def parse_response(self, body: dict[str, Any]) -> ir.Response:
        return response.parse_response(body)

    def render_response(self, resp: ir.Response, req: ir.Request) -> dict[str, Any]:
        return response.render_response(resp, req)

    def stream_parser(self) -> stream.StreamParser:
        return stream.StreamParser()

    def stream_renderer(self, req: ir.Request) -> stream.StreamRenderer:
        return stream.StreamRenderer(req)

    def error_event(self, message: str, error_type: str = "api_error") -> bytes:
        return stream.error_event(message, error_type)


CODEC: Codec = AnthropicCodec()
