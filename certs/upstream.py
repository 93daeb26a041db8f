"""Validation of the upstream CA (corporate TLS interception) PEM file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from certs.ca import fingerprint


class UpstreamCAError(ValueError):
    """The configured upstream CA path is unusable; the message says why and which path."""


@dataclass(frozen=True, slots=True)
class UpstreamCA:
    path: Path
    certificates: tuple[x509.Certificate, ...]

    @property
    def fingerprints(self) -> list[str]:
        return [fingerprint(c) for c in self.certificates]

    @property
    def subjects(self) -> list[str]:
        return [c.subject.rfc4514_string() for c in self.certificates]


# A CA bundle is small; refuse anything absurd before reading it into memory.
MAX_BYTES = 10 * 1024 * 1024


def validate_upstream_ca(path: str | os.PathLike[str]) -> UpstreamCA:
    """Check that ``path`` exists, is a readable file and holds at least one PEM certificate."""
    p = Path(path).expanduser()
    try:
        exists, is_file = p.exists(), p.is_file()
    except OSError as exc:  # e.g. a name too long: exists() raises for it
        raise UpstreamCAError(f"upstream CA path {p} cannot be used: {exc.strerror}") from exc
    if not exists:
        raise UpstreamCAError(f"upstream CA file {p} does not exist")
    if not is_file:
        raise UpstreamCAError(f"upstream CA path {p} is not a file")
    if p.stat().st_size > MAX_BYTES:
        raise UpstreamCAError(f"upstream CA file {p} is larger than {MAX_BYTES} bytes")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise UpstreamCAError(f"upstream CA file {p} is not readable: {exc.strerror}") from exc
    if b"-----BEGIN CERTIFICATE-----" not in raw:
        raise UpstreamCAError(
            f"upstream CA file {p} holds no valid PEM certificate: "
            "it contains no PEM certificate block"
        )
    try:
        certs = x509.load_pem_x509_certificates(raw)
    except ValueError as exc:
        raise UpstreamCAError(
            f"upstream CA file {p} holds no valid PEM certificate: one is malformed"
        ) from exc
    return UpstreamCA(path=p, certificates=tuple(certs))
