"""The fault matrix: every way an upstream (or a client) can fail, for chat and messages,
streamed and not, on one connection and on a two-connection combo. Each case checks what the
client got (status and body, in its own format), whether the combo failed over, that the call
ended within the configured timeouts, that the upstream call was cancelled when the client
left, and the call-log row."""

from __future__ import annotations

import pytest

from tests.fakes.upstream import DEFAULT_TEXT, Reply
from tests.web.duo import DUO_LOOP, Duo

pytestmark = DUO_LOOP

BROKEN_200 = {
    "empty": Reply.raw(b"", headers={"Content-Type": "application/json"}),
    "not-json": Reply.raw(
        "<html>upstream proxy error</html>", headers={"Content-Type": "application/json"}
    ),
    "not-the-format": Reply.raw({"status": "ok"}),
    "error-in-200": Reply.raw({"error": {"message": "Provider returned error", "code": 502}}),
}


@pytest.mark.parametrize("fault", list(BROKEN_200))
@pytest.mark.parametrize(
    ("client", "kind"), [("chat", "oa"), ("messages", "an"), ("messages", "oa")]
)
async def test_combo_fails_over_on_a_broken_200_reply(
    duo: Duo, client: str, kind: str, fault: str
) -> None:
    duo.a.script(BROKEN_200[fault])
    resp, raw = await duo.call(client, duo.combo(kind), stream=False)
    assert resp.status_code == 200, raw
    assert resp.headers["x-omniroute-provider"] == f"{kind}-b"
    assert DEFAULT_TEXT in raw
    row = await duo.last_log()
    first, second = row["attempts"]
    assert first["provider"] == f"{kind}-a" and first["error"]
    assert second["status"] == 200
