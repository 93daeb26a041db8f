"""The Gemini and Cloud Code codecs: the facades the router calls. They differ only in the
Cloud Code envelope around bodies and stream chunks, which every direction passes on."""

from __future__ import annotations

from typing import Any

from router import ir
from router.formats.codec import Codec, ModuleCodec, StreamParser, StreamRenderer
from router.formats.gemini import CLOUDCODE, NAME, request, response, stream

_ACTIONS = (":generateContent", ":streamGenerateContent")
_FIELDS = frozenset({"contents", "systemInstruction", "system_instruction"})


class GeminiCodec(ModuleCodec):
    """The Gemini ``generateContent`` format."""

    name = NAME
    reply_keys: tuple[str, ...] = ("candidates", "promptFeedback")
    sse_comments = False  # google-genai fails on any stream line that is not ``data:``
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

    def stream_parser(self) -> StreamParser:
        return stream.StreamParser(envelope=self.envelope)

    def stream_renderer(self, req: ir.Request) -> StreamRenderer:
        return stream.StreamRenderer(req, envelope=self.envelope)

    def mark_unfinished(self, rendered: dict[str, Any]) -> None:
        response.mark_unfinished(rendered, envelope=self.envelope)

    def passthrough_body(self, body: dict[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
        if self.envelope:  # the envelope names the model
            return super().passthrough_body(body, model, stream=stream)
        # Gemini names the model in the URL path, never in the body.
        return {k: v for k, v in body.items() if k != "model"}


class CloudCodeCodec(GeminiCodec):
    """Cloud Code ``v1internal``: a Gemini request inside ``{model, project, ..., request}``,
    responses and stream chunks inside ``{"response": ...}``."""

    name = CLOUDCODE
    reply_keys = ("response",)
    envelope = True


CODEC: Codec = GeminiCodec(request, response, stream)
CLOUDCODE_CODEC: Codec = CloudCodeCodec(request, response, stream)
