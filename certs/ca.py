"""The llmtap CA: one per data dir, stored in mitmproxy's confdir layout so mitmproxy issues
leaves from it. Generation, loading, rotation and fingerprints live here."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

# mitmproxy's CertStore.from_store(confdir, "mitmproxy", ...) reads f"{basename}-ca.pem".
BASENAME = "mitmproxy"
CA_COMMON_NAME = "llmtap CA"
CA_ORGANIZATION = "llmtap"
VALIDITY = datetime.timedelta(days=3650)
# Backdated like mitmproxy does, so clients with a slightly slow clock accept fresh certs.
BACKDATE = datetime.timedelta(days=2)

CaKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class CertError(Exception):
    """The CA files are missing, unreadable or not what llmtap expects."""


@dataclass(frozen=True, slots=True)
class CAPaths:
    confdir: Path
    key_and_cert: Path  # what mitmproxy loads (private key + certificate)
    cert: Path  # certificate only: what users install / download
    cert_cer: Path  # same PEM with the extension Android and Windows expect
    cert_p12: Path  # certificate only, PKCS#12, for Windows import dialogs

    @classmethod
    def of(cls, confdir: Path) -> CAPaths:
        return cls(
            confdir=confdir,
            key_and_cert=confdir / f"{BASENAME}-ca.pem",
            cert=confdir / f"{BASENAME}-ca-cert.pem",
            cert_cer=confdir / f"{BASENAME}-ca-cert.cer",
            cert_p12=confdir / f"{BASENAME}-ca-cert.p12",
        )


@dataclass(frozen=True, slots=True)
class CA:
    cert: x509.Certificate
    paths: CAPaths

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @property
    def fingerprint_sha256(self) -> str:
        return fingerprint(self.cert, hashes.SHA256())

    @property
    def fingerprint_sha1(self) -> str:
        """Windows' certutil lists only SHA-1 hashes, so trust checks there need this one."""
        return fingerprint(self.cert, hashes.SHA1())  # identification, not security

    @property
    def not_after(self) -> datetime.datetime:
        return self.cert.not_valid_after_utc


def fingerprint(cert: x509.Certificate, algorithm: hashes.HashAlgorithm | None = None) -> str:
    """Upper-case hex with colons, the form browsers and openssl show."""
    digest = cert.fingerprint(algorithm or hashes.SHA256())
    return ":".join(f"{b:02X}" for b in digest)


def der_fingerprint(der: bytes) -> str:
    """SHA-256 of raw DER in the same colon form; for scanning bundles without parsing them."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def load_or_create(confdir: Path) -> CA:
    """Load the CA from ``confdir``; create it (and the directory) when there is none.

    A present but unreadable CA is an error, never silently replaced: leaves already trusted
    by the user's tools hang off it."""
    paths = CAPaths.of(confdir)
    if not paths.key_and_cert.exists():
        return _create(paths)
    ca = _load(paths)
    _tighten_key_mode(paths.key_and_cert)
    if not paths.cert.exists():
        _write_public_files(paths, ca.cert)
    return ca


def regenerate(confdir: Path) -> CA:
    """Make a new key pair and certificate, replacing the old ones. The running proxy must
    reload ``CA.paths.confdir`` afterwards; tools that trusted the old CA must trust this one."""
    return _create(CAPaths.of(confdir))


def _create(paths: CAPaths) -> CA:
    paths.confdir.mkdir(parents=True, exist_ok=True)
    # EC P-256 (spec/agents.md allows it or RSA-2048): made in ~0.02 ms where an RSA-2048
    # key took 13-110 ms of a first start's CPU (a random search for primes), and mitmproxy
    # signs each leaf, and serves each handshake, with this key: ECDSA is the cheaper there too.
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _build_cert(key)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    # Public files first: mitmproxy reads only the combined file, so a crash in between leaves
    # the old CA working rather than a key whose certificate nobody can download.
    _write_public_files(paths, cert)
    atomic_write(
        paths.key_and_cert, key_pem + cert.public_bytes(serialization.Encoding.PEM), mode=0o600
    )
    return CA(cert=cert, paths=paths)


def _build_cert(key: CaKey) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, CA_ORGANIZATION),
        ]
    )
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now - BACKDATE + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _load(paths: CAPaths) -> CA:
    try:
        raw = paths.key_and_cert.read_bytes()
    except OSError as exc:
        raise CertError(f"cannot read the CA file {paths.key_and_cert}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(raw, password=None)
        certs = x509.load_pem_x509_certificates(raw)
    except (ValueError, TypeError) as exc:
        raise CertError(
            f"{paths.key_and_cert} is not an unencrypted PEM private key plus certificate"
        ) from exc
    cert = certs[0]
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CertError(f"{paths.key_and_cert}: only RSA and EC CA keys are supported")
    if cert.public_key() != key.public_key():
        raise CertError(f"{paths.key_and_cert}: the private key does not match the certificate")
    return CA(cert=cert, paths=paths)


def _write_public_files(paths: CAPaths, cert: x509.Certificate) -> None:
    pem = cert.public_bytes(serialization.Encoding.PEM)
    atomic_write(paths.cert, pem, mode=0o644)
    atomic_write(paths.cert_cer, pem, mode=0o644)
    p12 = pkcs12.serialize_key_and_certificates(
        name=CA_COMMON_NAME.encode(),
        key=None,
        cert=cert,
        cas=None,
        encryption_algorithm=serialization.NoEncryption(),
    )
    atomic_write(paths.cert_p12, p12, mode=0o644)
    # mitmproxy writes a stale .p12 *with the key* next to its own CA; never leave an old one.
    with contextlib.suppress(FileNotFoundError):
        (paths.confdir / f"{BASENAME}-ca.p12").unlink()


def _tighten_key_mode(path: Path) -> None:
    if os.name == "posix" and path.stat().st_mode & 0o077:
        path.chmod(0o600)


def atomic_write(path: Path, data: bytes, *, mode: int) -> None:
    """Replace ``path`` with ``data`` at once (written and synced beside it, then renamed)."""
    # mkstemp creates the file 0600 from the start, so the key is never briefly world-readable.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
