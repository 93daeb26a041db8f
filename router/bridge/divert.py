"""The divert hop: how a captured agent call is handed to the router on loopback. Internal
headers (agent, capture source, record id, mapped model, effort) ride on the rewritten request
and are honoured only with this process's secret; the router endpoint per wire format lives
here too. (The mapping rule itself is the store's ``find_mapping``.)"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from router.store.agents import normalize_effort

# Every internal header starts with this prefix; all of them are stripped before a request is
# recorded, routed or sent upstream, whoever set them.
PREFIX = "x-llmtap-hop-"
H_SECRET = PREFIX + "secret"
H_AGENT = PREFIX + "agent"
H_SOURCE = PREFIX + "source"
H_REQUEST_ID = PREFIX + "request-id"
H_MODEL = PREFIX + "model"
H_EFFORT = PREFIX + "effort"

SOURCES = ("agent-bridge", "http-proxy", "system-proxy", "custom-host")

# The router endpoint that speaks each divertable format (the agent's own wire format in, the
# same format back). Cloud Code's path carries the streaming choice.
ROUTER_PATHS = {
    "anthropic": "/v1/messages",
    "responses": "/v1/responses",
    "openai-chat": "/v1/chat/completions",
}
CLOUDCODE_PATHS = ("/v1internal:generateContent", "/v1internal:streamGenerateContent")
DIVERTABLE = frozenset({*ROUTER_PATHS, "cloudcode"})

# The agent's credentials for its own provider never travel to another provider.
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "x-api-key", "x-goog-api-key", "cookie", "proxy-authorization"}
)


def router_path(fmt: str, path: str) -> str | None:
    """The router endpoint for a call of format ``fmt`` the agent sent to ``path``."""
    if fmt == "cloudcode":
        stream = ":streamGenerateContent" in path.split("?", 1)[0]
        return CLOUDCODE_PATHS[1] if stream else CLOUDCODE_PATHS[0]
    return ROUTER_PATHS.get(fmt)


def model_of(fmt: str, body: Any) -> str | None:
    """The model a call asks for (every divertable format has it at the top level)."""
    if isinstance(body, dict):
        model = body.get("model")
        if isinstance(model, str) and model:
            return model
    return None


@dataclass(frozen=True, slots=True)
class Hop:
    """What the capture side tells the router about a diverted call."""

    agent: str
    source: str
    request_id: str
    model: str | None = None  # the mapped target; None = the agent's model, unchanged
    effort: str | None = None

    def headers(self, secret: str) -> dict[str, str]:
        out = {
            H_SECRET: secret,
            H_AGENT: self.agent,
            H_SOURCE: self.source,
            H_REQUEST_ID: self.request_id,
        }
        if self.model:
            out[H_MODEL] = self.model
        if self.effort:
            out[H_EFFORT] = self.effort
        return out


def read_hop(headers: Mapping[str, str], secret: str) -> Hop | None:
    """The hop the headers describe, only when they carry this process's secret (compared in
    constant time). Header names are looked up lower-case."""
    given = headers.get(H_SECRET)
    if not given or not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        return None
    source = headers.get(H_SOURCE, "")
    agent = headers.get(H_AGENT, "")
    rid = headers.get(H_REQUEST_ID, "")
    if source not in SOURCES or not agent or not rid:
        return None
    try:
        effort = normalize_effort(headers.get(H_EFFORT))
    except ValueError:
        effort = None
    return Hop(agent, source, rid, headers.get(H_MODEL) or None, effort)


def strip_hop(headers: MutableMapping[str, Any]) -> None:
    """Remove every internal header (any case) in place."""
    for name in [k for k in headers if k.lower().startswith(PREFIX)]:
        del headers[name]


@dataclass(slots=True)
class BridgeCounters:
    """AgentBridge figures for ``state``: requests intercepted, client connections open."""

    intercepted: int = 0
    active: int = 0
