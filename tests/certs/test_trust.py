"""OS trust-store install and check, against tmp dirs and recording fake tools."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from certs.ca import CA, load_or_create, regenerate
from certs.trust import AnchorStore, TrustConfig, install, is_trusted, uninstall
from certs.upstream import validate_upstream_ca
from tests.router.bridge.fakeos import FakeOS, run_as_nobody, world_readable_dir


def linux_setup(root: Path) -> tuple[CA, FakeOS, TrustConfig, Path]:
    ca = load_or_create(root / "conf")
    other = load_or_create(root / "other-root")
    system_roots = root / "system-roots.pem"
    system_roots.write_text(other.cert_pem)
    anchors = root / "anchors"
    anchors.mkdir()
    bundle = root / "ca-certificates.crt"
    bundle.write_text(other.cert_pem)
    fake = FakeOS(root / "os", ("update-ca-certificates", "certutil"))
    fake.state = {
        "ca": {"system_roots": str(system_roots), "anchors": str(anchors), "bundle": str(bundle)}
    }
    home = root / "home"
    home.mkdir()
    cfg = TrustConfig(
        platform="linux",
        anchors=(AnchorStore(root / "no-such-dir", ("update-ca-trust", "extract")),
                 AnchorStore(anchors, ("update-ca-certificates",))),
        bundles=(root / "missing.crt", bundle),
        home=home,
    )  # fmt: skip
    return ca, fake, cfg, anchors


def test_linux_anchor_install(tmp_path: Path) -> None:
    ca, fake, cfg, anchors = linux_setup(tmp_path)
    runner = fake.runner()
    assert not is_trusted(ca, runner, cfg)
    result = install(ca, runner, cfg)
    assert result.status == "installed", result.detail
    anchor = anchors / "llmtap-ca.crt"
    assert anchor.read_text() == ca.cert_pem
    assert anchor.stat().st_mode & 0o777 == 0o644
    assert fake.calls() == [["update-ca-certificates"]]
    assert is_trusted(ca, runner, cfg)
    assert result.nss == []  # no NSS databases under this home

    fake.clear_calls()
    assert install(ca, runner, cfg).status == "already"
    assert fake.calls() == []


def test_linux_regenerated_ca_is_not_trusted_until_installed(tmp_path: Path) -> None:
    ca, fake, cfg, _ = linux_setup(tmp_path)
    install(ca, fake.runner(), cfg)
    new = regenerate(ca.paths.confdir)
    assert not is_trusted(new, fake.runner(), cfg)
    assert install(new, fake.runner(), cfg).status == "installed"
    assert is_trusted(new, fake.runner(), cfg)
    assert not is_trusted(ca, fake.runner(), cfg)  # the old one was replaced in the anchors


def test_nss_databases(tmp_path: Path) -> None:
    ca, fake, cfg, _ = linux_setup(tmp_path)
    nssdb = cfg.home / ".pki/nssdb"
    profile = cfg.home / ".mozilla/firefox/abcd.default-release"
    for db in (nssdb, profile):
        db.mkdir(parents=True)
        (db / "cert9.db").write_bytes(b"")
    result = install(ca, fake.runner(), cfg)
    assert result.nss == [str(nssdb), str(profile)]
    certutil_calls = [c for c in fake.calls() if c[0] == "certutil"]
    assert certutil_calls[1] == [
        "certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "llmtap CA", "-i", str(ca.paths.cert)
    ]  # fmt: skip
    assert len(certutil_calls) == 4  # delete-then-add per database


def test_linux_refresh_failure_is_skipped_with_guide(tmp_path: Path) -> None:
    ca, fake, cfg, _ = linux_setup(tmp_path)
    st = fake.state
    st["fail"] = {"update-ca-certificates": {"rc": 2, "stderr": "cannot write /etc/ssl/certs"}}
    fake.state = st
    result = install(ca, fake.runner(), cfg)
    assert result.status == "skipped"
    assert "exit 2" in result.detail and "cannot write /etc/ssl/certs" in result.detail
    assert result.guide is not None
    for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "CURL_CA_BUNDLE"):
        assert var in result.guide
    assert "restarted from that shell" in result.guide


def test_no_anchor_dir_is_skipped(tmp_path: Path) -> None:
    ca = load_or_create(tmp_path / "conf")
    fake = FakeOS(tmp_path / "os", ())
    cfg = TrustConfig(
        platform="linux",
        anchors=(AnchorStore(tmp_path / "none", ("x",)),),
        bundles=(),
        home=tmp_path,
    )
    result = install(ca, fake.runner(), cfg)
    assert result.status == "skipped" and "no known CA anchors directory" in result.detail
    assert result.as_dict()["guide"] == result.guide


def test_unwritable_store_is_skipped(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to uid nobody")
    with world_readable_dir() as root:
        ca = load_or_create(root / "conf")
        ca.paths.confdir.chmod(0o755)
        anchors = root / "anchors"
        anchors.mkdir(mode=0o755)
        fake = FakeOS(tmp_path / "os", ("update-ca-certificates",))
        cfg = TrustConfig(platform="linux", anchors=(AnchorStore(anchors, ("update-ca-certificates",)),),
                          bundles=(), home=root)  # fmt: skip
        runner = fake.runner()
        out = run_as_nobody(lambda: repr(install(ca, runner, cfg).as_dict()))
        assert "'status': 'skipped'" in out
        assert f"permission denied writing {anchors / 'llmtap-ca.crt'}" in out
        assert "NODE_EXTRA_CA_CERTS" in out
        assert list(anchors.iterdir()) == []
        assert fake.calls() == []

        # and an upstream CA the process cannot read is named as such
        secret = root / "corp.pem"
        secret.write_text(ca.cert_pem)
        secret.chmod(0o600)
        out = run_as_nobody(lambda: repr(validate_upstream_ca(secret)))
        assert (
            out == f"UpstreamCAError: upstream CA file {secret} is not readable: Permission denied"
        )


def test_macos_keychain(tmp_path: Path) -> None:
    ca = load_or_create(tmp_path / "conf")
    fake = FakeOS(tmp_path / "os", ("security",))
    kc = tmp_path / "System.keychain"
    cfg = TrustConfig(platform="darwin", keychain=kc)
    runner = fake.runner()
    assert not is_trusted(ca, runner, cfg)
    fake.clear_calls()
    result = install(ca, runner, cfg)
    assert result.status == "installed"
    assert fake.calls() == [
        ["security", "find-certificate", "-a", "-Z", str(kc)],
        [
            "security",
            "add-trusted-cert",
            "-d",
            "-r",
            "trustRoot",
            "-k",
            str(kc),
            str(ca.paths.cert),
        ],
    ]
    assert is_trusted(ca, runner, cfg)
    assert install(ca, runner, cfg).status == "already"


def test_macos_without_admin_is_skipped(tmp_path: Path) -> None:
    ca = load_or_create(tmp_path / "conf")
    fake = FakeOS(tmp_path / "os", ("security",))
    fake.state = {"fail": {"security": {"match": "add-trusted-cert", "rc": 1,
                                        "stderr": "SecTrustSettingsSetTrustSettings: The authorization was denied"}}}  # fmt: skip
    result = install(ca, fake.runner(), TrustConfig(platform="darwin", keychain=tmp_path / "k"))
    assert result.status == "skipped"
    assert "authorization was denied" in result.detail
    assert "sudo security add-trusted-cert" in result.detail
    assert result.guide is not None and "NODE_EXTRA_CA_CERTS" in result.guide


def test_windows_root_store(tmp_path: Path) -> None:
    ca = load_or_create(tmp_path / "conf")
    fake = FakeOS(tmp_path / "os", ("certutil",))
    cfg = TrustConfig(platform="win32")
    runner = fake.runner()
    assert not is_trusted(ca, runner, cfg)
    assert install(ca, runner, cfg).status == "installed"
    assert ["certutil", "-addstore", "Root", str(ca.paths.cert)] in fake.calls()
    assert is_trusted(ca, runner, cfg)
    assert install(ca, runner, cfg).status == "already"


def test_untrust_on_each_os(tmp_path: Path) -> None:
    # Linux: the anchor goes, the bundle is rebuilt, NSS databases drop the nickname.
    ca, fake, cfg, anchors = linux_setup(tmp_path / "linux")
    nssdb = cfg.home / ".pki/nssdb"
    nssdb.mkdir(parents=True)
    (nssdb / "cert9.db").write_bytes(b"")
    runner = fake.runner()
    assert uninstall(ca, runner, cfg).status == "absent"
    install(ca, runner, cfg)
    fake.clear_calls()
    result = uninstall(ca, runner, cfg)
    assert result.status == "removed" and result.nss == [str(nssdb)]
    assert not (anchors / "llmtap-ca.crt").exists() and not is_trusted(ca, runner, cfg)
    assert fake.calls() == [
        ["update-ca-certificates"],
        ["certutil", "-d", f"sql:{nssdb}", "-D", "-n", "llmtap CA"],
    ]

    # macOS: deleted from the keychain by SHA-1.
    ca = load_or_create(tmp_path / "mac" / "conf")
    mac = FakeOS(tmp_path / "mac" / "os", ("security",))
    kc = tmp_path / "mac" / "System.keychain"
    mcfg = TrustConfig(platform="darwin", keychain=kc)
    assert uninstall(ca, mac.runner(), mcfg).status == "absent"
    install(ca, mac.runner(), mcfg)
    assert uninstall(ca, mac.runner(), mcfg).status == "removed"
    assert not is_trusted(ca, mac.runner(), mcfg)
    sha1 = ca.fingerprint_sha1.replace(":", "")
    assert ["security", "delete-certificate", "-Z", sha1, str(kc)] in mac.calls()

    # Windows: deleted from the Root store by its SHA-1 hash.
    ca = load_or_create(tmp_path / "win" / "conf")
    win = FakeOS(tmp_path / "win" / "os", ("certutil",))
    wcfg = TrustConfig(platform="win32")
    install(ca, win.runner(), wcfg)
    assert uninstall(ca, win.runner(), wcfg).status == "removed"
    assert not is_trusted(ca, win.runner(), wcfg)
    win_sha1 = ca.fingerprint_sha1.replace(":", "").lower()
    assert ["certutil", "-delstore", "Root", win_sha1] in win.calls()


def test_untrust_without_admin_names_the_command(tmp_path: Path) -> None:
    ca = load_or_create(tmp_path / "conf")
    fake = FakeOS(tmp_path / "os", ("certutil",))
    cfg = TrustConfig(platform="win32")
    install(ca, fake.runner(), cfg)
    fake.state = fake.state | {"fail": {"certutil": {"match": "-delstore", "rc": 5,
                                                     "stderr": "Access is denied."}}}  # fmt: skip
    result = uninstall(ca, fake.runner(), cfg)
    assert result.status == "skipped" and "Access is denied" in result.detail
    assert "Administrator" in result.detail and "certutil -delstore Root" in result.detail
