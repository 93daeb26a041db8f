"""The Anthropic codec: the facade the router calls, one method per direction."""

from __future__ import annotations

from typing import Any

from router import ir
from router.formats.anthropic import NAME, request, response, stream
from router.formats.common import Codec


class AnthropicCodec:
    name = NAME

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
