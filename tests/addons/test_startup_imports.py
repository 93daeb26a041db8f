"""What `llmtap up` loads before it answers, and while it idles: counted (module names), not
timed. Serving needs none of the modules below; each was a measurable part of start-to-healthy
or of the idle RSS (docs/benchmarks.md) until it was deferred to the command or the first call
that needs it."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from tests.addons.proc import start_llmtap

# module -> why it is not needed to serve
NOT_AT_START = {
    "httpx": "only the CLI commands that call a running server use it",
    "httpcore": "httpx's and dnspython's transport",
    "anyio": "pulled in by httpcore",
    "dns.asyncresolver": "passthrough resolves origins at the first passthrough connection",
    "flask": "mitmproxy's onboarding app (default addons are not loaded)",
    "ldap3": "mitmproxy's proxy auth (default addons are not loaded)",
    # A submodule: the log also lists an import that was tried and failed (peewee tries the
    # drivers llmtap hides from it, router/store/drivers.py), without its submodules.
    "psycopg.pq": "peewee imports PostgreSQL drivers when installed; SQLite needs none",
    "psycopg2.extensions": "the same, for psycopg2",
}
# Work a server does once it is up waits this long (addons.main.AFTER_START_S) and more.
IDLE_S = 1.5


def test_serving_starts_without_the_modules_it_does_not_need(tmp_path: Path) -> None:
    app = start_llmtap(tmp_path / "data", env={"PYTHONPROFILEIMPORTTIME": "1"})
    try:
        at_start = _imported(app.log())  # read as soon as GET /v1 answered
        # Then idle past the start-up's deferred work, by the server's own clock.
        for _ in range(200):
            health = httpx.get(app.url + "/api/monitoring/health", timeout=5).json()
            if health["uptimeSeconds"] >= IDLE_S:
                break
            time.sleep(0.05)
        assert health["uptimeSeconds"] >= IDLE_S
        idle = _imported(app.log())
    finally:
        app.stop()
    assert "aiohttp.web" in at_start and "mitmproxy.master" in at_start  # the log is real
    early = {name: why for name, why in NOT_AT_START.items() if name in at_start}
    assert not early, early
    while_idle = {name: why for name, why in NOT_AT_START.items() if name in idle}
    assert not while_idle, while_idle


def _imported(log: str) -> set[str]:
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", log, re.M))
