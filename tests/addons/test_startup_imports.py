"""What `llmtap up` loads before it answers: counted (module names), not timed. Serving needs
none of the modules below; each was a measurable part of start-to-healthy (docs/benchmarks.md)
until it was deferred to the command or the first call that needs it."""

from __future__ import annotations

import re
from pathlib import Path

from tests.addons.proc import start_llmtap

# module -> why it is not needed to serve
NOT_AT_START = {
    "httpx": "only the CLI commands that call a running server use it",
    "httpcore": "httpx's and dnspython's transport",
    "anyio": "pulled in by httpcore",
    "dns.asyncresolver": "passthrough resolves origins at the first passthrough connection",
    "flask": "mitmproxy's onboarding app (default addons are not loaded)",
    "ldap3": "mitmproxy's proxy auth (default addons are not loaded)",
}


def test_serving_starts_without_the_modules_it_does_not_need(tmp_path: Path) -> None:
    app = start_llmtap(tmp_path / "data", env={"PYTHONPROFILEIMPORTTIME": "1"})
    try:
        log = app.log()  # read as soon as GET /v1 answered
    finally:
        app.stop()
    loaded = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", log, re.M))
    assert "aiohttp.web" in loaded and "mitmproxy.master" in loaded  # the log is the real one
    early = {name: why for name, why in NOT_AT_START.items() if name in loaded}
    assert not early, early
