"""Upstream providers: per-kind URLs, auth and error mapping on one shared aiohttp session."""

from router.providers import anthropic, gemini, openai
from router.providers.base import (
    ANTHROPIC_VERSION,
    PROVIDER_KINDS,
    Provider,
    call_format,
    forwarded_headers,
    get_provider,
    map_status_error,
    normalize_url,
    provider_format,
    register,
    retry_after_seconds,
)

# The registry (router.providers.base.get_provider): one provider per kind.
for _kind in (openai.PROVIDER, anthropic.PROVIDER, gemini.PROVIDER):
    register(_kind)

from router.providers.http import (  # noqa: E402  # after the registry is filled
    DEFAULT_FIRST_BYTE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    UpstreamCall,
    build_headers,
    call_head,
    list_models,
    map_transport_error,
    open_call,
)
from router.providers.session import (  # noqa: E402
    DEFAULT_CONNECT_TIMEOUT,
    ROUTER_MARKER_HEADER,
    ROUTER_MARKER_VALUE,
    load_upstream_ca,
    make_client,
    upstream_ssl_context,
)

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_FIRST_BYTE_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "PROVIDER_KINDS",
    "ROUTER_MARKER_HEADER",
    "ROUTER_MARKER_VALUE",
    "Provider",
    "UpstreamCall",
    "build_headers",
    "call_format",
    "call_head",
    "forwarded_headers",
    "get_provider",
    "list_models",
    "load_upstream_ca",
    "make_client",
    "map_status_error",
    "map_transport_error",
    "normalize_url",
    "open_call",
    "provider_format",
    "retry_after_seconds",
    "upstream_ssl_context",
]
