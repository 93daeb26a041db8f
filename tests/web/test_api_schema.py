"""schemathesis against a live ``llmtap up``: every operation of the generated OpenAPI document
gets a bounded number of generated requests (boundary values, wrong types, random bodies) and
must answer without a server error and within its documented response schema."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.addons.proc import ROOT, start_llmtap

SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(ROOT, ".venv", "bin")))
# The AgentBridge listener answers 501 by design until issue 10's divert work lands; the
# WebSocket route is not HTTP request/response.
EXCLUDED = r"^/api/tools/agent-bridge/server$|/ws$"


@pytest.mark.skipif(SCHEMATHESIS is None, reason="schemathesis is not installed")
def test_no_server_errors_and_no_schema_violations(tmp_path: Path) -> None:
    app = start_llmtap(tmp_path / "data")
    try:
        argv = [
            str(SCHEMATHESIS), "run", f"{app.url}/api/openapi/spec",
            "--checks", "not_a_server_error,response_schema_conformance",
            "--phases", "coverage,fuzzing", "--max-examples", "3",
            "--generation-deterministic", "--workers", "1", "--request-timeout", "30",
            "--exclude-path-regex", EXCLUDED,
            "--header", f"X-Llmtap-Token: {app.token}",
        ]  # fmt: skip
        out = subprocess.run(
            argv, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False
        )
    finally:
        assert app.stop() == 0, app.log()
    report = out.stdout[-6000:] + out.stderr[-2000:]
    assert out.returncode == 0, report
    assert "Server error" not in out.stdout and "Response violates schema" not in out.stdout
