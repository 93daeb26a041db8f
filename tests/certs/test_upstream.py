"""Upstream CA path validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from certs.ca import load_or_create
from certs.upstream import UpstreamCAError, validate_upstream_ca


def test_valid_bundle(tmp_path: Path) -> None:
    a, b = load_or_create(tmp_path / "a"), load_or_create(tmp_path / "b")
    bundle = tmp_path / "corp.pem"
    bundle.write_text("# corporate roots\n" + a.cert_pem + b.cert_pem)
    up = validate_upstream_ca(str(bundle))
    assert up.path == bundle
    assert up.fingerprints == [a.fingerprint_sha256, b.fingerprint_sha256]
    assert up.subjects[0] == "O=llmtap,CN=llmtap CA"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("dir", "is not a file"),
        ("hello", "contains no PEM certificate"),
        ("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n", "malformed"),
    ],
)
def test_invalid(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "ca.pem"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    with pytest.raises(UpstreamCAError, match=message):
        validate_upstream_ca(path)
