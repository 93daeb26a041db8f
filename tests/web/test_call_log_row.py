"""A finished router call as its call-log row (web/runtime.py:call_log)."""

from __future__ import annotations

import pytest

from router import ir
from router.engine import CallInfo, Inbound
from router.errors import Attempt
from router.formats import get_codec
from router.routing.resolve import Step
from router.store.records import CallLog, ProviderConnection
from router.traffic.masking import mask_text
from web.runtime import call_log


def _call(model: str, error: str | None = None) -> CallInfo:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    info = CallInfo(Inbound(format="openai-chat", body=body, path="/v1/chat/completions"))
    info.requested_model = model
    info.request = get_codec("openai-chat").parse_request(body)
    info.request.dropped = ["logprobs"]
    conn = ProviderConnection(id="c1", provider="openai", name="oa", url="https://one.test/v1")
    info.step = Step(connection=conn, model="gpt-4o-mini")
    info.target_format = "openai-chat"
    info.attempts = [
        Attempt(connection_id="c0", provider="down", model=model, status=502, error=error),
        Attempt(connection_id="c1", provider="oa", model="gpt-4o-mini", status=200, latency_ms=3.5),
    ]
    t0 = info.t0
    info.t_sent, info.t_first_token, info.t_done = t0 + 0.001, t0 + 0.002, t0 + 0.004
    info.status, info.streamed, info.finished = 200, True, True
    info.usage = ir.Usage(12, 3, cache_read_tokens=2, estimated=True)
    info.cost_usd = None
    return info


@pytest.mark.parametrize("secret", [None, "sk-" + "q" * 40])
def test_the_row_built_unvalidated_is_what_validation_would_make(secret: str | None) -> None:
    """The row is built without validation on the reply's path: validating its own dump gives
    it back, and a key a client put in a model name or an error is masked as validation's
    masking would."""
    model = f"x/echo-{secret}" if secret else "fast"
    row = call_log(_call(model, error=f"upstream said {secret}" if secret else "boom"))
    assert CallLog.model_validate(row.model_dump()) == row
    assert (row.provider, row.connection_id, row.model) == ("oa", "c1", "gpt-4o-mini")
    assert (row.attempt, row.status, row.streamed, row.dropped_fields) == (
        2,
        200,
        True,
        ["logprobs"],
    )
    assert (row.tokens_in, row.tokens_out, row.cache_read_tokens, row.usage_estimated) == (
        12, 3, 2, True
    )  # fmt: skip
    assert row.cost_usd is None and row.latency_ms == pytest.approx(4, abs=0.01)
    if secret:
        assert secret not in row.model_dump_json()
        assert row.requested_model == mask_text(model) != model
    else:
        assert row.requested_model == "fast" and row.attempts[0]["error"] == "boom"
