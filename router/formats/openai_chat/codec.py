"""The Chat Completions codec: the facade the router calls, one method per direction."""

from __future__ import annotations

from typing import Any

from router import ir
from router.formats.common import Codec
from router.formats.openai_chat import NAME, request, response, stream


class OpenAIChatCodec:
    name = NAME

    def detect_path(self, path: str, body: Any) -> bool:
        """A call to this format's endpoint (``path`` without query or trailing slash)."""
        return path.endswith("/chat/completions")

    def detect_body(self, body: Any) -> bool:
        """A body of this format, for a call whose path says nothing."""
        return isinstance(body, dict) and isinstance(body.get("messages"), list)

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


CODEC: Codec = OpenAIChatCodec()
