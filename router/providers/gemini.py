"""Gemini provider (Generative Language API): ``x-goog-api-key``, the model in the path."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from router.providers.base import Provider, base_url
from router.store.records import ProviderConnection


def bare_model(name: str) -> str:
    """``models/gemini-2.5-pro`` -> ``gemini-2.5-pro`` (Gemini lists and accepts both)."""
    return name.removeprefix("models/")


class GeminiProvider(Provider):
    kind = "gemini"
    format = "gemini"
    formats = ("gemini",)
    # The SDK's identification; it describes the body only when the client wrote it.
    forward_same_format = frozenset({"x-goog-api-client"})
    # The Google GenAI SDK's base URL is the bare host; it adds the API version itself.
    default_path = "/v1beta"

    def call_url(
        self, conn: ProviderConnection, model: str, *, stream: bool, api_format: str | None = None
    ) -> str:
        self.check_format(api_format)
        target = f"{base_url(conn)}/models/{quote(bare_model(model), safe='-._~@')}"
        # Without alt=sse Gemini streams one long JSON array; SSE is what the codecs parse.
        return f"{target}:streamGenerateContent?alt=sse" if stream else f"{target}:generateContent"

    def auth_headers(self, conn: ProviderConnection) -> dict[str, str]:
        # The header, not ?key=, so the key never lands in URLs, logs or recorded flows.
        return {"x-goog-api-key": conn.api_key} if conn.api_key else {}

    def parse_models(self, body: Any) -> tuple[list[str], str | None]:
        data = body.get("models") if isinstance(body, dict) else None
        ids = [
            bare_model(str(m["name"])) for m in data or [] if isinstance(m, dict) and m.get("name")
        ]
        token = body.get("nextPageToken") if isinstance(body, dict) else None
        return ids, (str(token) if token else None)

    def next_models_params(self, cursor: str) -> dict[str, str]:
        return {"pageToken": cursor, "pageSize": "1000"}


PROVIDER = GeminiProvider()
