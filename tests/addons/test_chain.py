"""llmtap's addons as one mitmproxy addon (addons/chain.py), with mitmproxy's taddons/tflow and
the real capture tagger, recorder and live buffer: the same hooks in the same order, each
part isolated, and one addon's dispatch per event instead of one per part."""

from __future__ import annotations

import logging
import sys
from types import FrameType
from typing import Any

import pytest
from mitmproxy import exceptions
from mitmproxy.test import taddons

from addons import meta
from addons.capture import CaptureTagger
from addons.chain import Chain
from addons.options import LlmtapOptions
from addons.recorder import Recorder
from router.bridge.agents import default_catalog
from router.traffic.buffer import LiveBuffer
from tests.addons.test_work_per_flow import _flow


class Seen:
    """A test addon that notes the events it gets (and can fail on one)."""

    def __init__(self, label: str, log: list[str], fail_on: str = "") -> None:
        self.label, self.log, self.fail_on = label, log, fail_on

    def request(self, flow: Any) -> None:
        self.log.append(f"{self.label}.request")
        if self.fail_on == "request":
            raise RuntimeError("boom")

    async def running(self) -> None:
        self.log.append(f"{self.label}.running")
        if self.fail_on == "running":
            raise RuntimeError("boom")

    def configure(self, updated: set[str]) -> None:
        if self.fail_on == "configure" and "llmtap_api_port" in updated:
            raise exceptions.OptionsError("refused")


def _parts(buffer: LiveBuffer) -> tuple[CaptureTagger, Recorder]:
    return CaptureTagger(agents=default_catalog()), Recorder(buffer.add, buffer.update)


def test_a_flow_goes_through_every_part_in_order() -> None:
    buffer = LiveBuffer(size=10)
    tagger, recorder = _parts(buffer)
    chain = Chain(LlmtapOptions(), tagger, recorder)
    flow = _flow("api.anthropic.com", "/v1/messages")
    response, flow.response = flow.response, None
    with taddons.context(chain):
        chain.request(flow)  # type: ignore[attr-defined]
        assert flow.metadata[meta.AGENT] == "claude-code"  # the tagger ran first
        assert flow.metadata[meta.ID]  # then the recorder
        flow.response = response
        chain.response(flow)  # type: ignore[attr-defined]
    [record] = buffer.list()
    assert record.agent == "claude-code" and record.status == 200


def test_a_hook_only_one_part_has_is_that_parts_own_method() -> None:
    buffer = LiveBuffer(size=10)
    tagger, recorder = _parts(buffer)
    chain = Chain(LlmtapOptions(), tagger, recorder)
    assert chain.load == chain.parts[0].load  # type: ignore[attr-defined]
    assert chain.responseheaders == recorder.responseheaders  # type: ignore[attr-defined]
    assert chain.tls_clienthello == tagger.tls_clienthello  # type: ignore[attr-defined]
    assert not hasattr(chain, "websocket_message")  # no part handles it: nothing offered


def test_a_failing_part_is_logged_and_the_next_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    chain = Chain(Seen("a", log, fail_on="request"), Seen("b", log))
    with caplog.at_level(logging.ERROR, "llmtap.addons"):
        chain.request(object())  # type: ignore[attr-defined]
    assert log == ["a.request", "b.request"]
    assert "Seen failed on request" in caplog.text


async def test_async_hooks_run_in_order_and_isolated() -> None:
    log: list[str] = []
    chain = Chain(Seen("a", log, fail_on="running"), Seen("b", log))
    await chain.running()  # type: ignore[attr-defined]
    assert log == ["a.running", "b.running"]


def test_an_options_error_still_rolls_the_option_back() -> None:
    log: list[str] = []
    chain = Chain(LlmtapOptions(), Seen("a", log, fail_on="configure"), Seen("b", log))
    with taddons.context(chain) as tctx, pytest.raises(exceptions.OptionsError):
        tctx.options.update(llmtap_api_port=1234)
    assert tctx.options.llmtap_api_port == 0


def _quiet(*parts: Any) -> list[Any]:
    """The parts with their flow hooks doing nothing: their own work is not dispatch."""
    for part in parts:
        for name in ("request", "responseheaders", "response"):
            if hasattr(part, name):
                setattr(part, name, lambda _flow: None)
    return list(parts)


def _dispatch_calls(*addons: Any) -> int:
    """Python calls mitmproxy spends offering a flow's events to ``addons``."""
    from mitmproxy import hooks
    from mitmproxy.proxy.layers import http

    calls = 0

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal calls
        calls += event == "call"

    with taddons.context(*addons) as tctx:
        manager = tctx.master.addons
        flow = _flow("example.com", "/")
        events = [
            http.HttpRequestHook(flow),
            http.HttpResponseHeadersHook(flow),
            http.HttpResponseHook(flow),
            hooks.UpdateHook([flow]),
        ]
        sys.setprofile(profile)
        try:
            for hook in events:
                manager.trigger(hook)
        finally:
            sys.setprofile(None)
    return calls


def test_one_chain_costs_one_addons_dispatch() -> None:
    buffer = LiveBuffer(size=10)
    separate = _dispatch_calls(*_quiet(LlmtapOptions(), *_parts(buffer)))
    chained = _dispatch_calls(Chain(*_quiet(LlmtapOptions(), *_parts(buffer))))
    base = _dispatch_calls()  # the test master's own addons
    # Three addons offered each event, against one: about a third of the dispatch.
    assert chained - base < (separate - base) / 2, (base, chained, separate)
