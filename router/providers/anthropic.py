"""Anthropic provider: ``x-api-key`` + ``anthropic-version``, /messages, paged /models."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from router.providers.base import ANTHROPIC_VERSION, Provider, base_url
from router.store.records import ProviderConnection


class AnthropicProvider(Provider):
    kind = "anthropic"
    format = "anthropic"
    formats = ("anthropic",)
    forward_always = frozenset({"anthropic-beta"})
    # The version names the body's schema: only a body the client wrote in this format.
    forward_same_format = frozenset({"anthropic-version"})
    endpoint_re = re.compile(r"/(messages|models|complete)(/.*)?$")

    def call_url(
        self, conn: ProviderConnection, model: str, *, stream: bool, api_format: str | None = None
    ) -> str:
        self.check_format(api_format)
        return f"{base_url(conn)}/messages"

    def forwarded_headers(self, client: Mapping[str, str], *, same_format: bool) -> dict[str, str]:
        headers = super().forwarded_headers(client, same_format=same_format)
        if "anthropic-beta" in headers:
            # An OAuth beta (Claude Code on a subscription login) switches the upstream to
            # token auth; the connection authenticates with its own API key instead.
            betas = [
                b.strip()
                for b in headers["anthropic-beta"].split(",")
                if b.strip() and not b.strip().startswith("oauth-")
            ]
            if betas:
                headers["anthropic-beta"] = ",".join(betas)
            else:
                del headers["anthropic-beta"]
        return headers

    def auth_headers(self, conn: ProviderConnection) -> dict[str, str]:
        return {"x-api-key": conn.api_key} if conn.api_key else {}

    def default_headers(self, *, stream: bool) -> dict[str, str]:
        # A client's own anthropic-version (forwarded in extra_headers) overrides this default.
        return {**super().default_headers(stream=stream), "anthropic-version": ANTHROPIC_VERSION}

    def parse_models(self, body: Any) -> tuple[list[str], str | None]:
        data = body.get("data") if isinstance(body, dict) else None
        ids = [str(m["id"]) for m in data or [] if isinstance(m, dict) and m.get("id")]
        more = isinstance(body, dict) and body.get("has_more") is True
        last = body.get("last_id") if isinstance(body, dict) else None
        return ids, (str(last) if more and last else None)

    def next_models_params(self, cursor: str) -> dict[str, str]:
        return {"after_id": cursor, "limit": "1000"}


PROVIDER = AnthropicProvider()
