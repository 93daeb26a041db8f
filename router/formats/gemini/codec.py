"""The Gemini and Cloud Code codecs: the facades the router calls, one method per direction.
They differ only in the Cloud Code envelope around bodies and stream chunks."""

from __future__ import annotations

from typing import Any

from router import ir
from router.formats.common import Codec
from router.formats.gemini import CLOUDCODE, NAME, request, response, stream

_ACTIONS = (":generateContent", ":streamGenerateContent")
_FIELDS = frozenset({"contents", "systemInstruction", "system_instruction"})


class GeminiCodec:
    """The Gemini ``generateContent`` format."""

    name = NAME
    envelope = False

    def detect_path(self, path: str, body: Any) -> bool:
        """A call to this format's endpoint (``path`` without query or trailing slash)."""
        return path.endswith(_ACTIONS) and ("/v1internal" in path) == self.envelope

    def detect_body(self, body: Any) -> bool:
        """A body of this format, for a call whose path says nothing."""
        if isinstance(body, dict) and self.envelope:
            body = body.get("request")
        return isinstance(body, dict) and not _FIELDS.isdisjoint(body)

    def parse_request(self, body: dict[str, Any]) -> ir.Request:
        return request.parse_request(body, envelope=self.envelope)

    def render_request(self, req: ir.Request) -> dict[str, Any]:
        return request.render_request(req, envelope=self.envelope)

    def parse_response(self, body: dict[str, Any]) -> ir.Response:
        return response.parse_response(body, envelope=self.envelope)

    def render_response(self, resp: ir.Response, req: ir.Request) -> dict[str, Any]:
        return response.render_response(resp, req, envelope=self.envelope)

    def stream_parser(self) -> stream.StreamParser:
        return stream.StreamParser(envelope=self.envelope)

    def stream_renderer(self, req: ir.Request) -> stream.StreamRenderer:
        return stream.StreamRenderer(req, envelope=self.envelope)

    def error_event(self, message: str, error_type: str = "api_error") -> bytes:
        return stream.error_event(message, error_type)


class CloudCodeCodec(GeminiCodec):
    """Cloud Code ``v1internal``: a Gemini request inside ``{model, project, ..., request}``,
    responses and stream chunks inside ``{"response": ...}``."""

    name = CLOUDCODE
    envelope = True


CODEC: Codec = GeminiCodec()
CLOUDCODE_CODEC: Codec = CloudCodeCodec()
