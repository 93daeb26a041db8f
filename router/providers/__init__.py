"""Upstream providers: per-kind URLs, auth and error mapping on one shared httpx client."""

from router.providers.base import (
    ANTHROPIC_VERSION,
    PROVIDER_KINDS,
    Provider,
    get_provider,
    map_status_error,
    provider_format,
    retry_after_seconds,
)
from router.providers.http import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_FIRST_BYTE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    ROUTER_MARKER_HEADER,
    ROUTER_MARKER_VALUE,
    UpstreamCall,
    build_headers,
    list_models,
    load_upstream_ca,
    make_client,
    map_transport_error,
    open_call,
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
    "get_provider",
    "list_models",
    "load_upstream_ca",
    "make_client",
    "map_status_error",
    "map_transport_error",
    "open_call",
    "provider_format",
    "retry_after_seconds",
    "upstream_ssl_context",
]
