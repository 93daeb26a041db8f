"""The llmtap CA: attributes, files, rotation, and mitmproxy issuing leaves from it."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from mitmproxy.certs import CertStore

from certs.ca import CertError, fingerprint, load_or_create, regenerate


def test_ca_attributes(tmp_path: Path) -> None:
    ca = load_or_create(tmp_path / "conf")
    cert = ca.cert
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "llmtap CA"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "llmtap"
    assert (
        cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha256"
    )
    pub = cert.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == "secp256r1"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == datetime.timedelta(days=3650)
    assert (
        cert.not_valid_before_utc < datetime.datetime.now(datetime.UTC) < cert.not_valid_after_utc
    )
    cert.verify_directly_issued_by(cert)  # self-signed: verifies with its own key


def test_files_modes_and_fingerprint(tmp_path: Path) -> None:
    ca = load_or_create(tmp_path / "conf")
    p = ca.paths
    assert p.key_and_cert.name == "mitmproxy-ca.pem" and p.cert.name == "mitmproxy-ca-cert.pem"
    assert p.key_and_cert.stat().st_mode & 0o777 == 0o600
    assert p.cert.stat().st_mode & 0o777 == 0o644
    raw = p.key_and_cert.read_text()
    assert "PRIVATE KEY" in raw and ca.cert_pem in raw
    assert p.cert.read_text() == ca.cert_pem == p.cert_cer.read_text()
    assert "PRIVATE KEY" not in p.cert.read_text()
    fp = ca.fingerprint_sha256
    assert len(fp.split(":")) == 32 and fp == fp.upper()
    assert fp == fingerprint(x509.load_pem_x509_certificate(p.cert.read_bytes()))
    # loading again is the same CA, and a loosened key mode is tightened
    p.key_and_cert.chmod(0o644)
    p.cert.unlink()
    again = load_or_create(tmp_path / "conf")
    assert again.fingerprint_sha256 == fp
    assert p.key_and_cert.stat().st_mode & 0o777 == 0o600
    assert p.cert.read_text() == ca.cert_pem


def test_regenerate_makes_a_new_key_pair(tmp_path: Path) -> None:
    old = load_or_create(tmp_path)
    new = regenerate(tmp_path)
    assert new.fingerprint_sha256 != old.fingerprint_sha256
    assert new.cert.public_key() != old.cert.public_key()
    assert load_or_create(tmp_path).fingerprint_sha256 == new.fingerprint_sha256
    assert new.paths.cert.read_text() == new.cert_pem


def test_mitmproxy_issues_leaves_from_it(tmp_path: Path) -> None:
    ca = load_or_create(tmp_path)
    store = CertStore.from_store(tmp_path, "mitmproxy", 2048)
    assert store.default_ca.to_cryptography() == ca.cert
    entry = store.get_cert("api.anthropic.com", [x509.DNSName("api.anthropic.com")])
    leaf = entry.cert.to_cryptography()
    assert leaf.issuer == ca.cert.subject
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["api.anthropic.com"]
    leaf.verify_directly_issued_by(ca.cert)  # name and signature

    # after regenerate, a freshly loaded store issues from the new CA
    new = regenerate(tmp_path)
    leaf2 = CertStore.from_store(tmp_path, "mitmproxy", 2048).get_cert("api.anthropic.com", []).cert
    assert leaf2.to_cryptography().issuer == new.cert.subject
    leaf2.to_cryptography().verify_directly_issued_by(new.cert)


def test_broken_ca_is_an_error_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "mitmproxy-ca.pem").write_text("garbage")
    with pytest.raises(CertError, match="not an unencrypted PEM private key"):
        load_or_create(tmp_path)
    assert (tmp_path / "mitmproxy-ca.pem").read_text() == "garbage"


def test_key_must_match_certificate(tmp_path: Path) -> None:
    a = load_or_create(tmp_path / "a")
    b = load_or_create(tmp_path / "b")
    key = a.paths.key_and_cert.read_text().split("-----BEGIN CERTIFICATE-----")[0]
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "mitmproxy-ca.pem").write_text(key + b.cert_pem)
    with pytest.raises(CertError, match="does not match"):
        load_or_create(tmp_path / "c")
