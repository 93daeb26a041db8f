"""Capture addon: decides per connection what is decrypted (bypass, TLS intercept off) and
tags each flow for the recorder and the divert hop: capture source, agent, and for an agent's
chat call its source model and the mapping that applies (read live from the store). Refuses
proxying into llmtap's own API. Behaviour is configured through mitmproxy options."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from mitmproxy import ctx, exceptions, http, tls
from mitmproxy.proxy import layers, mode_specs
from mitmproxy.proxy.layer import NextLayer
from mitmproxy.proxy.layers.tls import ServerTLSLayer

from addons import meta
from addons.options import own_ports, proxy_servers, watch_listeners
from router import jsonfast
from router.bridge import divert
from router.bridge.agents import Agent, AgentCatalog
from router.bridge.bypass import BypassMatcher
from router.errors import LlmtapError
from router.providers import ROUTER_MARKER_HEADER, ROUTER_MARKER_VALUE
from web.security import self_connect_refusal

log = logging.getLogger("llmtap.capture")

DETECTED_FLUSH_S = 0.5  # sightings are batched into one store write
_HOP_PREFIX = divert.PREFIX.encode()
_HOP_LEN = len(_HOP_PREFIX)
_MARKER = ROUTER_MARKER_HEADER.lower().encode()


def _no_mapping(_agent: str, _model: str | None) -> Any:
    return None


class CaptureTagger:
    def __init__(
        self,
        *,
        agents: AgentCatalog,
        custom_host: Callable[[str], Any] = lambda _host: None,
        find_mapping: Callable[[str, str | None], Any] = _no_mapping,
        route_all: Callable[[str], bool] = lambda _agent: False,
        record_models: Callable[[dict[tuple[str, str], int]], None] | None = None,
    ) -> None:
        self.agents = agents
        self.custom_host = custom_host
        self.find_mapping = find_mapping
        self.route_all = route_all
        self.record_models = record_models
        self.bypass = BypassMatcher()
        self._own_ports: frozenset[int] = frozenset()
        self._seen: dict[tuple[str, str], int] = {}
        self._flush: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ options

    def configure(self, updated: set[str]) -> None:
        if "mode" in updated or "llmtap_api_port" in updated:
            self._refresh_ports()
        if "llmtap_bypass" in updated:
            # normalize_pattern raises BadRequest for a bad pattern; mitmproxy rolls the option
            # update back and reports it, so the running set is never half-applied.
            try:
                self.bypass = BypassMatcher(ctx.options.llmtap_bypass)
            except LlmtapError as exc:
                raise exceptions.OptionsError(exc.message) from exc

    def running(self) -> None:
        # A listener on port 0 has its real port only once bound: follow the servers.
        watch_listeners(self._refresh_ports)
        self._refresh_ports()

    def _refresh_ports(self) -> None:
        self._own_ports = own_ports(ctx.options, proxy_servers())

    # ------------------------------------------------------------------ connection hooks

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        # Bypass is decided from the SNI before anything is decrypted: the tunnel stays raw.
        host = data.client_hello.sni or (
            data.context.server.address[0] if data.context.server.address else ""
        )
        if host and self.bypass.matches(host):
            data.ignore_connection = True

    def next_layer(self, nextlayer: NextLayer) -> None:
        # TLS intercept off: a CONNECT tunnel's TLS is relayed as raw TCP (counted by the tunnel
        # recorder, never decrypted) instead of being terminated with our CA.
        if ctx.options.llmtap_tls_intercept or not isinstance(nextlayer.layer, ServerTLSLayer):
            return
        if isinstance(nextlayer.context.client.proxy_mode, mode_specs.RegularMode):
            nextlayer.layer = layers.TCPLayer(nextlayer.context)

    # ------------------------------------------------------------------ request

    def request(self, flow: http.HTTPFlow) -> None:
        try:
            self._tag(flow)
        except Exception:  # a bad flow is logged and passed through, never raised
            log.exception("tagging a flow failed")

    def _tag(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        # Internal hop headers are ours alone: whatever a client sent under that name goes.
        # Looked for in the raw fields first (mitmproxy's per-name accessors cost a few
        # Python calls per header, on every flow); almost no request carries one.
        if any(name[:_HOP_LEN].lower() == _HOP_PREFIX for name, _ in req.headers.fields):
            divert.strip_hop(req.headers)
        if meta.header(req.headers.fields, _MARKER) == ROUTER_MARKER_VALUE:
            # The router's own upstream call (e.g. through the system proxy): never re-captured.
            flow.metadata[meta.SKIP] = True
            return
        if self._refuse_own_target(flow):
            return
        mode = flow.client_conn.proxy_mode
        if isinstance(mode, mode_specs.ReverseMode):
            source = "agent-bridge"
        elif isinstance(mode, mode_specs.RegularMode) and ctx.options.llmtap_system_proxy:
            source = "system-proxy"
        else:
            source = "http-proxy"
        host = (req.pretty_host or flow.client_conn.sni or "").lower()
        flow.metadata[meta.SOURCE] = source
        custom = self.custom_host(host)
        if custom is not None:  # a custom host's kind wins over detection (inspector.md)
            flow.metadata[meta.CUSTOM_KIND] = custom.kind
            if source in ("http-proxy", "agent-bridge"):
                flow.metadata[meta.SOURCE] = "custom-host"
        agent = self.agents.agent_for_host(host)
        by_host = agent is not None
        if agent is None:
            user_agent = meta.header(req.headers.fields, b"user-agent") or ""
            agent = self.agents.agent_for_user_agent(user_agent)
        if agent is None:
            return
        flow.metadata[meta.AGENT] = agent.agent_id
        # Divert applies to the agent's own hosts, and to a custom host of kind llm the agent
        # was pointed at; elsewhere an agent is only named on the record.
        if by_host or (custom is not None and custom.kind == "llm"):
            self._chat(flow, agent)

    def _refuse_own_target(self, flow: http.HTTPFlow) -> bool:
        """Per request (a kept-alive server connection is not connected again): a literal
        address of ours is answered 403 here, before anything is recorded. Names are
        resolved and checked in the divert addon's ``server_connect``, on the address
        actually connected to. A client never carries the hop secret (stripped above): only
        the divert addon, after this, builds the one hop that may reach our API."""
        req = flow.request
        if req.port not in self._own_ports:  # refused only on one of our ports (no address parse)
            return False
        literal = "127.0.0.1" if req.host.lower().rstrip(".") == "localhost" else req.host
        reason = self_connect_refusal([literal], req.port, self._own_ports)
        if reason is None:
            return False
        flow.metadata[meta.SKIP] = True
        flow.response = http.Response.make(
            403,
            json.dumps({"error": {"message": reason, "type": "permission_error"}}),
            {"content-type": "application/json"},
        )
        return True

    def _chat(self, flow: http.HTTPFlow, agent: Agent) -> None:
        req = flow.request
        fmt = agent.chat_format(req.path)
        if fmt is None:
            return
        if req.method != "POST":
            # Codex first tries its Responses calls over a WebSocket on the same path: with a
            # `*` mapping (or route-all) the socket itself is diverted to the router, which
            # speaks that transport too; its messages carry no model the mapping could
            # choose by before the upgrade, so an exact-model mapping alone leaves it be.
            upgrade = req.headers.get("upgrade", "").lower() == "websocket"
            path = divert.router_path(fmt, req.path)
            if upgrade and agent.divert and fmt == "responses" and path is not None:
                rule = self.find_mapping(agent.agent_id, None)
                if rule is not None or self.route_all(agent.agent_id):
                    target = rule.target_model if rule is not None else None
                    effort = rule.effort if rule is not None else None
                    flow.metadata[meta.DIVERT] = (fmt, path, target, effort)
                    if target is not None:
                        flow.metadata[meta.MAPPED_MODEL] = target
            return
        flow.metadata[meta.CHAT_FORMAT] = fmt
        try:
            body = jsonfast.loads(req.get_content(strict=False) or b"")
        except ValueError:
            body = None
        flow.metadata[meta.REQUEST_JSON] = body  # parsed once: the recorder reuses it
        source_model = divert.model_of(fmt, body)
        if source_model is not None:
            flow.metadata[meta.SOURCE_MODEL] = source_model
            self._count(agent.agent_id, source_model)
        if not agent.divert or fmt not in divert.DIVERTABLE or not isinstance(body, dict):
            return  # capture only (agents.json says why), or nothing the router can parse
        path = divert.router_path(fmt, req.path)
        if path is None:
            return
        # Read live (exact source model, then '*'): a mapping written now applies to this call.
        rule = self.find_mapping(agent.agent_id, source_model)
        if rule is None and not self.route_all(agent.agent_id):
            return  # unmapped: passthrough to the real origin
        target = rule.target_model if rule is not None else None
        effort = rule.effort if rule is not None else None
        flow.metadata[meta.DIVERT] = (fmt, path, target, effort)
        if target is not None:
            flow.metadata[meta.MAPPED_MODEL] = target

    # ------------------------------------------------------------------ detected models

    def _count(self, agent_id: str, model: str) -> None:
        key = (agent_id, model)
        self._seen[key] = self._seen.get(key, 0) + 1
        if self.record_models is None or self._flush is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._flush = loop.call_later(DETECTED_FLUSH_S, self._start_flush)

    def _start_flush(self) -> None:
        self._flush = None
        batch, self._seen = self._seen, {}
        if not batch or self.record_models is None:
            return
        task = asyncio.get_running_loop().create_task(self._write(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, batch: dict[tuple[str, str], int]) -> None:
        assert self.record_models is not None
        try:
            await asyncio.to_thread(self.record_models, batch)
        except Exception:
            log.exception("could not store detected models")

    def done(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        batch, self._seen = self._seen, {}
        if batch and self.record_models is not None:
            try:
                self.record_models(batch)
            except Exception:
                log.exception("could not store detected models")
