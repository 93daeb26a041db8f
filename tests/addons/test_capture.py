"""The capture tagger on its own, with mitmproxy's taddons/tflow: sources, agents, the divert
decision from live mappings, bypass applied from an option, hop headers a client cannot set."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from mitmproxy import exceptions, tls
from mitmproxy.proxy import context, mode_specs
from mitmproxy.test import taddons, tflow, tutils

from addons import meta
from addons.capture import CaptureTagger
from addons.options import LlmtapOptions
from router.bridge.agents import default_catalog
from router.bridge.divert import H_AGENT, H_SECRET


@dataclass
class Row:
    source_model: str
    target_model: str
    effort: str | None = None


@dataclass
class Custom:
    kind: str


BRIDGE = mode_specs.ProxyMode.parse("reverse:https://llmtap-bridge.invalid:443@127.0.0.1:4443")


def chat_flow(
    host: str = "api.anthropic.com",
    path: str = "/v1/messages",
    model: str = "claude-sonnet-4-5",
    *,
    mode: mode_specs.ProxyMode | None = None,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> Any:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    req = tutils.treq(
        host=host, port=443, scheme=b"https", method=method.encode(), path=path.encode(),
        content=body.encode(),
    )  # fmt: skip
    req.headers["host"] = host
    for k, v in (headers or {}).items():
        req.headers[k] = v
    flow = tflow.tflow(req=req)
    if mode is not None:
        flow.client_conn.proxy_mode = mode
    return flow


class Store:
    def __init__(self) -> None:
        self.rows: dict[str, list[Row]] = {}
        self.route_all: set[str] = set()
        self.recorded: list[dict[tuple[str, str], int]] = []


def tagger(store: Store, **kw: Any) -> CaptureTagger:
    def find_mapping(agent: str, model: str | None) -> Row | None:
        # the store's rule (router.store.agents.find_mapping), over the fake's rows
        rows = {r.source_model: r for r in store.rows.get(agent, [])}
        return rows.get(model or "") or rows.get("*")

    return CaptureTagger(
        agents=default_catalog(),
        find_mapping=find_mapping,
        route_all=lambda agent: agent in store.route_all,
        record_models=store.recorded.append,
        **kw,
    )


async def test_source_and_agent_in_each_mode() -> None:
    store = Store()
    addon = tagger(store)
    with taddons.context(LlmtapOptions(), addon) as tctx:
        flow = chat_flow()
        addon.request(flow)
        assert flow.metadata[meta.SOURCE] == "http-proxy"
        assert flow.metadata[meta.AGENT] == "claude-code"
        assert flow.metadata[meta.SOURCE_MODEL] == "claude-sonnet-4-5"
        assert meta.DIVERT not in flow.metadata  # no mapping: passthrough

        tctx.options.update(llmtap_system_proxy=True)
        flow = chat_flow()
        addon.request(flow)
        assert flow.metadata[meta.SOURCE] == "system-proxy"

        flow = chat_flow(mode=BRIDGE)
        addon.request(flow)
        assert flow.metadata[meta.SOURCE] == "agent-bridge"


async def test_mapping_and_effort_read_live_per_request() -> None:
    store = Store()
    addon = tagger(store)
    with taddons.context(LlmtapOptions(), addon):
        store.rows["claude-code"] = [Row("*", "openai/gpt-4.1-mini")]
        flow = chat_flow()
        addon.request(flow)
        assert flow.metadata[meta.DIVERT] == (
            "anthropic",
            "/v1/messages",
            "openai/gpt-4.1-mini",
            None,
        )
        assert flow.metadata[meta.MAPPED_MODEL] == "openai/gpt-4.1-mini"
        # A write takes effect on the next request; the exact source model wins over '*'.
        store.rows["claude-code"] = [
            Row("*", "openai/gpt-4.1-mini"),
            Row("claude-sonnet-4-5", "openai/o3", "xhigh"),
        ]
        flow = chat_flow()
        addon.request(flow)
        assert flow.metadata[meta.DIVERT] == ("anthropic", "/v1/messages", "openai/o3", "xhigh")


async def test_route_all_diverts_unmapped_models_unchanged() -> None:
    store = Store()
    store.route_all.add("codex")
    addon = tagger(store)
    with taddons.context(LlmtapOptions(), addon):
        flow = chat_flow("chatgpt.com", "/backend-api/codex/responses", "gpt-5-codex")
        addon.request(flow)
        assert flow.metadata[meta.DIVERT] == ("responses", "/v1/responses", None, None)
        assert meta.MAPPED_MODEL not in flow.metadata


async def test_cloudcode_stream_path_and_non_chat_paths() -> None:
    store = Store()
    store.rows["antigravity"] = [Row("*", "openai/gpt-4.1")]
    store.rows["claude-code"] = [Row("*", "openai/gpt-4.1")]
    addon = tagger(store)
    with taddons.context(LlmtapOptions(), addon):
        flow = chat_flow(
            "cloudcode-pa.googleapis.com", "/v1internal:streamGenerateContent?alt=sse", "gemini-x"
        )
        addon.request(flow)
        assert flow.metadata[meta.DIVERT][:2] == ("cloudcode", "/v1internal:streamGenerateContent")
        # count_tokens and GETs on the agent's host are not chat calls: they pass through.
        for flow in (
            chat_flow(path="/v1/messages/count_tokens"),
            chat_flow(method="GET", path="/v1/messages"),
        ):
            addon.request(flow)
            assert flow.metadata[meta.AGENT] == "claude-code"
            assert meta.DIVERT not in flow.metadata


async def test_capture_only_agents_are_never_diverted() -> None:
    store = Store()
    store.rows["zed"] = [Row("*", "openai/gpt-4.1")]
    addon = tagger(store)
    with taddons.context(LlmtapOptions(), addon):
        flow = chat_flow("llm.zed.dev", "/completion", "claude-x")
        addon.request(flow)
        assert flow.metadata[meta.AGENT] == "zed"
        assert flow.metadata[meta.SOURCE_MODEL] == "claude-x"  # still counted and recorded
        assert meta.DIVERT not in flow.metadata


async def test_user_agent_names_the_agent_but_diverts_only_on_its_hosts_or_llm_custom_hosts() -> (
    None
):
    store = Store()
    store.rows["claude-code"] = [Row("*", "openai/gpt-4.1")]
    customs = {"llm.corp.example": Custom("llm"), "app.corp.example": Custom("app")}
    addon = tagger(store, custom_host=customs.get)
    with taddons.context(LlmtapOptions(), addon):
        ua = {"user-agent": "claude-cli/2.0.1 (external, cli)"}
        elsewhere = chat_flow("gateway.example", headers=ua)
        addon.request(elsewhere)
        assert elsewhere.metadata[meta.AGENT] == "claude-code"
        assert meta.DIVERT not in elsewhere.metadata
        llm_host = chat_flow("llm.corp.example", headers=ua)
        addon.request(llm_host)
        assert llm_host.metadata[meta.SOURCE] == "custom-host"
        assert llm_host.metadata[meta.DIVERT][2] == "openai/gpt-4.1"
        app_host = chat_flow("app.corp.example", headers=ua)
        addon.request(app_host)
        assert meta.DIVERT not in app_host.metadata


async def test_a_client_cannot_forge_hop_headers() -> None:
    addon = tagger(Store())
    with taddons.context(LlmtapOptions(), addon):
        flow = chat_flow(headers={H_SECRET: "guess", H_AGENT: "codex"})
        addon.request(flow)
        assert H_SECRET not in flow.request.headers and H_AGENT not in flow.request.headers


async def test_router_marker_is_skipped_and_api_port_refused() -> None:
    addon = tagger(Store())
    with taddons.context(LlmtapOptions(), addon) as tctx:
        flow = chat_flow(headers={"x-llmtap-origin": "router"})
        addon.request(flow)
        assert flow.metadata[meta.SKIP] is True and flow.response is None
        tctx.options.update(llmtap_api_port=20128)
        flow = tflow.tflow(req=tutils.treq(host="127.0.0.1", port=20128))
        addon.request(flow)
        assert flow.response.status_code == 403


def hello(sni: str) -> tls.ClientHelloData:
    ctx = context.Context(tflow.tclient_conn(), None)  # type: ignore[arg-type]
    ctx.server = tflow.tserver_conn()

    class Hello:
        pass

    h = Hello()
    h.sni = sni  # type: ignore[attr-defined]
    return tls.ClientHelloData(ctx, h)  # type: ignore[arg-type]


async def test_bypass_option_applies_without_restart() -> None:
    addon = tagger(Store())
    with taddons.context(LlmtapOptions(), addon) as tctx:
        data = hello("login.microsoftonline.com")  # a default pattern
        addon.tls_clienthello(data)
        assert data.ignore_connection is True
        data = hello("api.internal.example")
        addon.tls_clienthello(data)
        assert data.ignore_connection is False
        tctx.configure(addon, llmtap_bypass=["*.internal.example"])
        data = hello("api.internal.example")
        addon.tls_clienthello(data)
        assert data.ignore_connection is True
        with pytest.raises(exceptions.OptionsError):
            tctx.configure(addon, llmtap_bypass=["*"])
        assert addon.bypass.user == ["*.internal.example"]  # the bad update changed nothing


async def test_detected_models_are_batched_into_one_write() -> None:
    store = Store()
    addon = tagger(store)
    with taddons.context(LlmtapOptions(), addon):
        for model in ("claude-a", "claude-a", "claude-b"):
            addon.request(chat_flow(model=model))
        addon.done()
    assert store.recorded == [{("claude-code", "claude-a"): 2, ("claude-code", "claude-b"): 1}]


async def test_a_mapped_agents_websocket_chat_is_diverted_whole() -> None:
    """Codex's Responses WebSocket under a `*` mapping: the socket goes to the router, which
    speaks that transport, mapping every call on it."""
    store = Store()
    addon = tagger(store)
    with taddons.context(LlmtapOptions(), addon):
        ws = {"upgrade": "websocket", "connection": "Upgrade"}
        flow = chat_flow("api.openai.com", "/v1/responses", method="GET", headers=ws)
        addon.request(flow)
        assert meta.DIVERT not in flow.metadata  # unmapped: the origin may have it
        store.rows["codex"] = [Row("*", "anthropic/claude-x")]
        flow = chat_flow("api.openai.com", "/v1/responses", method="GET", headers=ws)
        addon.request(flow)
        assert flow.metadata[meta.DIVERT] == (
            "responses",
            "/v1/responses",
            "anthropic/claude-x",
            None,
        )
        assert flow.metadata[meta.MAPPED_MODEL] == "anthropic/claude-x"
        plain = chat_flow("api.openai.com", "/v1/responses", method="GET")
        addon.request(plain)
        assert meta.DIVERT not in plain.metadata  # a GET that is no upgrade is no call
