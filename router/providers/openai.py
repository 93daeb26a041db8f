"""OpenAI-compatible provider: OpenAI, OpenRouter, Groq, DeepSeek, Together, Ollama, vLLM, ..."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from router.providers.base import Provider, base_url
from router.store.records import ProviderConnection


class OpenAIProvider(Provider):
    kind = "openai"
    format = "openai-chat"
    formats = ("openai-chat", "responses")
    forward_always = frozenset({"openai-beta"})
    endpoint_re = re.compile(r"/(chat/completions|completions|responses|embeddings|models)(/.*)?$")

    def call_url(
        self, conn: ProviderConnection, model: str, *, stream: bool, api_format: str | None = None
    ) -> str:
        # The model and the stream flag travel in the body for both endpoints.
        if self.check_format(api_format) == "responses":
            return f"{base_url(conn)}/responses"
        return f"{base_url(conn)}/chat/completions"

    def call_format(self, conn: ProviderConnection, inbound_format: str) -> str:
        # Responses to a connection that serves it pass through, built-in tools, encrypted
        # reasoning and previous_response_id included; Chat Completions has no place for them.
        if inbound_format == "responses" and conn.supports_responses:
            return "responses"
        return self.format

    def responses_by_default(self, url: str) -> bool:
        return urlsplit(url).hostname == "api.openai.com"

    def auth_headers(self, conn: ProviderConnection) -> dict[str, str]:
        # Local servers (Ollama, LM Studio) run without a key; sending "Bearer " would be noise.
        return {"authorization": f"Bearer {conn.api_key}"} if conn.api_key else {}

    def parse_models(self, body: Any) -> tuple[list[str], str | None]:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            # Ollama's native shape, for a connection whose URL points there by mistake.
            data = body.get("models") if isinstance(body, dict) else None
        ids = [
            str(m.get("id") or m.get("name"))
            for m in data or []
            if isinstance(m, dict) and (m.get("id") or m.get("name"))
        ]
        return ids, None


PROVIDER = OpenAIProvider()
