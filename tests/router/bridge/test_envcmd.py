"""`llmtap env` / `llmtap run`: variables, shell quoting, combined CA bundle."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from certs.ca import load_or_create
from router.bridge.envcmd import (
    combined_ca_bundle,
    find_system_bundle,
    proxy_env,
    render_env,
    run_environment,
)

TRICKY = 'it\'s $HOME `id` "q" \\n ; & | *'


def test_proxy_env(tmp_path: Path) -> None:
    env = proxy_env(
        "http://127.0.0.1:8080", tmp_path / "bundle.pem", node_ca_path=tmp_path / "ca.pem"
    )
    assert env["HTTP_PROXY"] == env["https_proxy"] == "http://127.0.0.1:8080"
    assert env["NO_PROXY"] == env["no_proxy"] == "localhost,127.0.0.1,::1"
    for key in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"):
        assert env[key] == str(tmp_path / "bundle.pem")
    assert env["NODE_EXTRA_CA_CERTS"] == str(tmp_path / "ca.pem")
    run = run_environment(
        {"PATH": "/bin", "HTTP_PROXY": "old"}, "http://p", tmp_path / "b", node_ca_path=None
    )
    assert run["PATH"] == "/bin" and run["HTTP_PROXY"] == "http://p"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_quoting_round_trips() -> None:
    script = render_env({"A": TRICKY, "B": "plain"}, "bash")
    out = subprocess.run(
        ["bash", "-c", 'eval "$1"; printf "%s|%s" "$A" "$B"', "_", script],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out == f"{TRICKY}|plain"


def test_other_shells_render() -> None:
    assert render_env({"A": "it's"}, "zsh") == "export A='it'\\''s'\n"
    assert render_env({"A": "it's \\x"}, "fish") == "set -gx A 'it\\'s \\\\x'\n"
    assert render_env({"A": "it's $x"}, "powershell") == "$env:A = 'it''s $x'\n"
    with pytest.raises(ValueError):
        render_env({"BAD NAME": "x"}, "bash")
    with pytest.raises(ValueError):
        render_env({"A": "x"}, "tcsh")  # type: ignore[arg-type]


def test_combined_bundle(tmp_path: Path) -> None:
    roots_ca = load_or_create(tmp_path / "roots")
    system = tmp_path / "system.pem"
    system.write_text(roots_ca.cert_pem.rstrip("\n"))  # no trailing newline: must not glue
    ours = load_or_create(tmp_path / "conf")
    out = combined_ca_bundle(ours.paths.cert, tmp_path / "out" / "bundle.pem", system)
    certs = x509.load_pem_x509_certificates(out.read_bytes())
    assert certs == [roots_ca.cert, ours.cert]
    assert out.stat().st_mode & 0o777 == 0o644


def test_system_bundle_search(tmp_path: Path) -> None:
    present = tmp_path / "b.pem"
    present.write_text("x")
    assert find_system_bundle([tmp_path / "missing.pem", present]) == present
    assert find_system_bundle([tmp_path / "missing.pem"]) is None
    ours = load_or_create(tmp_path / "conf")
    out = combined_ca_bundle(ours.paths.cert, tmp_path / "b2.pem", candidates=[])
    assert out.read_text() == ours.cert_pem
