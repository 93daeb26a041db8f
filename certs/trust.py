"""Installing the llmtap CA into the OS trust store (Linux anchors + NSS, macOS keychain,
Windows Root store) and checking whether it is trusted. Every path and command is a parameter."""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from certs.ca import CA, atomic_write, der_fingerprint


class RunResult(Protocol):
    @property
    def returncode(self) -> int: ...
    @property
    def stdout(self) -> str: ...
    @property
    def stderr(self) -> str: ...


class Runner(Protocol):
    """What certs needs from a command runner; ``router.bridge.runner.CommandRunner`` fits.
    Called with ``check=False``: a failing command is a result here, not an exception."""

    def run(self, argv: list[str], *, check: bool = ...) -> RunResult: ...
    def which(self, name: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class AnchorStore:
    """A distro's CA anchors directory and the command that rebuilds the bundle from it."""

    directory: Path
    refresh: tuple[str, ...]
    filename: str = "llmtap-ca.crt"  # update-ca-certificates only picks up *.crt


LINUX_ANCHORS: tuple[AnchorStore, ...] = (
    AnchorStore(Path("/usr/local/share/ca-certificates"), ("update-ca-certificates",)),
    AnchorStore(Path("/etc/pki/ca-trust/source/anchors"), ("update-ca-trust", "extract")),
    AnchorStore(Path("/etc/ca-certificates/trust-source/anchors"), ("trust", "extract-compat")),
    AnchorStore(Path("/etc/pki/trust/anchors"), ("update-ca-certificates",)),
)
LINUX_BUNDLES: tuple[Path, ...] = (
    Path("/etc/ssl/certs/ca-certificates.crt"),
    Path("/etc/pki/tls/certs/ca-bundle.crt"),
    Path("/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"),
    Path("/etc/ca-certificates/extracted/tls-ca-bundle.pem"),
    Path("/var/lib/ca-certificates/ca-bundle.pem"),
    Path("/etc/ssl/ca-bundle.pem"),
)
MACOS_SYSTEM_KEYCHAIN = Path("/Library/Keychains/System.keychain")
NSS_NICKNAME = "llmtap CA"


@dataclass(frozen=True, slots=True)
class TrustConfig:
    platform: str = sys.platform
    anchors: Sequence[AnchorStore] = LINUX_ANCHORS
    bundles: Sequence[Path] = LINUX_BUNDLES
    home: Path = field(default_factory=Path.home)
    keychain: Path = MACOS_SYSTEM_KEYCHAIN
    nss: bool = True


TrustStatus = Literal["installed", "already", "skipped", "removed", "absent"]


@dataclass(slots=True)
class TrustResult:
    status: TrustStatus
    store: str
    detail: str = ""
    guide: str | None = None
    nss: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status,
            "store": self.store,
            "detail": self.detail,
            "guide": self.guide,
            "nss": list(self.nss),
        }


def manual_guide(ca_cert: Path, reason: str) -> str:
    """What to do when the OS store can't be written (containers, no root): trust per tool."""
    return (
        f"The system trust store could not be changed ({reason}).\n"
        "Point each tool at llmtap's CA instead (`llmtap env` prints these lines with a\n"
        "combined bundle of the system roots plus llmtap's CA):\n"
        "  SSL_CERT_FILE=<combined bundle>       OpenSSL-based tools, Python's ssl\n"
        "  REQUESTS_CA_BUNDLE=<combined bundle>  Python requests/httpx\n"
        f"  NODE_EXTRA_CA_CERTS={ca_cert}  Node.js; Electron IDEs (VS Code, Cursor, ...)\n"
        "      need this too and must be restarted from that shell\n"
        "  CURL_CA_BUNDLE=<combined bundle>      curl\n"
        f"The CA certificate itself: {ca_cert}"
    )


def install(ca: CA, runner: Runner, config: TrustConfig | None = None) -> TrustResult:
    """Add the CA to the OS trust store of ``config.platform``; never raises for a store that
    can't be written, it reports ``skipped`` with the manual guide instead."""
    cfg = config or TrustConfig()
    if cfg.platform == "darwin":
        return _install_macos(ca, runner, cfg)
    if cfg.platform == "win32":
        return _install_windows(ca, runner)
    result = _install_linux(ca, runner, cfg)
    if cfg.nss:
        result.nss = _install_nss(ca, runner, cfg.home)
    return result


def uninstall(ca: CA, runner: Runner, config: TrustConfig | None = None) -> TrustResult:
    """Remove the CA from the OS trust store (and NSS databases): ``removed``, ``absent``
    when it was not there, ``skipped`` with the command to run where the store is locked."""
    cfg = config or TrustConfig()
    if cfg.platform == "darwin":
        return _uninstall_macos(ca, runner, cfg)
    if cfg.platform == "win32":
        return _uninstall_windows(ca, runner)
    result = _uninstall_linux(ca, runner, cfg)
    if cfg.nss:
        result.nss = _uninstall_nss(runner, cfg.home)
    return result


def is_trusted(ca: CA, runner: Runner, config: TrustConfig | None = None) -> bool:
    """Whether the CA's fingerprint is found in the OS store."""
    cfg = config or TrustConfig()
    if cfg.platform == "darwin":
        res = runner.run(
            ["security", "find-certificate", "-a", "-Z", str(cfg.keychain)], check=False
        )
        wanted = _hex(ca.fingerprint_sha256)
        return res.returncode == 0 and any(
            _hex(m) == wanted for m in re.findall(r"SHA-256 hash:\s*([0-9A-Fa-f: ]+)", res.stdout)
        )
    if cfg.platform == "win32":
        res = runner.run(["certutil", "-store", "Root"], check=False)
        wanted = _hex(ca.fingerprint_sha1)
        return res.returncode == 0 and any(
            _hex(m) == wanted
            for m in re.findall(r"Cert Hash\(sha1\):\s*([0-9A-Fa-f: ]+)", res.stdout)
        )
    return any(ca.fingerprint_sha256 in bundle_fingerprints(b) for b in cfg.bundles)


def bundle_fingerprints(path: Path) -> set[str]:
    """SHA-256 fingerprints of every PEM certificate in a bundle, without parsing them: one odd
    certificate in a system bundle must not hide ours."""
    try:
        text = path.read_text("ascii", errors="replace")
    except OSError:
        return set()
    found: set[str] = set()
    for body in re.findall(
        r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", text, flags=re.S
    ):
        with contextlib.suppress(binascii.Error, ValueError):
            found.add(der_fingerprint(base64.b64decode("".join(body.split()), validate=True)))
    return found


def _install_linux(ca: CA, runner: Runner, cfg: TrustConfig) -> TrustResult:
    store = next((a for a in cfg.anchors if a.directory.is_dir()), None)
    if store is None:
        reason = "no known CA anchors directory on this system"
        return TrustResult("skipped", "linux", reason, manual_guide(ca.paths.cert, reason))
    target = store.directory / store.filename
    if is_trusted(ca, runner, cfg) and _same_file_content(target, ca.cert_pem):
        return TrustResult("already", str(store.directory), f"{target} is in the system bundle")
    try:
        # 0644: the bundle tools read anchors as other users
        atomic_write(target, ca.cert_pem.encode("ascii"), mode=0o644)
    except OSError as exc:
        reason = _os_reason(exc, target)
        return TrustResult(
            "skipped", str(store.directory), reason, manual_guide(ca.paths.cert, reason)
        )
    tool = store.refresh[0]
    if runner.which(tool) is None:
        reason = f"wrote {target} but `{tool}` is not installed to rebuild the bundle"
        return TrustResult(
            "skipped", str(store.directory), reason, manual_guide(ca.paths.cert, reason)
        )
    res = runner.run(list(store.refresh), check=False)
    if res.returncode != 0:
        reason = f"`{' '.join(store.refresh)}` failed (exit {res.returncode}): {_first_line(res)}"
        return TrustResult(
            "skipped", str(store.directory), reason, manual_guide(ca.paths.cert, reason)
        )
    return TrustResult("installed", str(store.directory), f"wrote {target}, ran {tool}")


def _uninstall_linux(ca: CA, runner: Runner, cfg: TrustConfig) -> TrustResult:
    present = [a for a in cfg.anchors if (a.directory / a.filename).exists()]
    if not present:
        return TrustResult("absent", "linux", "no llmtap CA in any anchors directory")
    removed: list[str] = []
    for store in present:
        target = store.directory / store.filename
        try:
            target.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            reason = _os_reason(exc, target).replace("ca trust", "ca untrust")
            return TrustResult("skipped", str(store.directory), reason)
        removed.append(str(target))
        if runner.which(store.refresh[0]) is None:
            reason = f"removed {target} but `{store.refresh[0]}` is not installed to rebuild"
            return TrustResult("skipped", str(store.directory), reason)
        res = runner.run(list(store.refresh), check=False)
        if res.returncode != 0:
            reason = (
                f"`{' '.join(store.refresh)}` failed (exit {res.returncode}): {_first_line(res)}"
            )
            return TrustResult("skipped", str(store.directory), reason)
    still = is_trusted(ca, runner, cfg)
    detail = f"removed {', '.join(removed)}" + (
        "; the fingerprint is still in a system bundle" if still else ""
    )
    return TrustResult("removed", str(present[0].directory), detail)


def _uninstall_nss(runner: Runner, home: Path) -> list[str]:
    dbs = _nss_databases(home)
    if not dbs or runner.which("certutil") is None:
        return []
    done: list[str] = []
    for db in dbs:
        res = runner.run(["certutil", "-d", f"sql:{db}", "-D", "-n", NSS_NICKNAME], check=False)
        if res.returncode == 0:
            done.append(str(db))
    return done


def _uninstall_macos(ca: CA, runner: Runner, cfg: TrustConfig) -> TrustResult:
    store = str(cfg.keychain)
    if not is_trusted(ca, runner, cfg):
        return TrustResult("absent", store, "the CA is not in the keychain")
    argv = ["security", "delete-certificate", "-Z", _hex(ca.fingerprint_sha1), store]
    res = runner.run(argv, check=False)
    if res.returncode != 0:
        reason = f"security exited {res.returncode}: {_first_line(res)}; as admin run: sudo {' '.join(argv)}"
        return TrustResult("skipped", store, reason)
    return TrustResult("removed", store, "deleted from the System keychain")


def _uninstall_windows(ca: CA, runner: Runner) -> TrustResult:
    if not is_trusted(ca, runner, TrustConfig(platform="win32")):
        return TrustResult("absent", "Root", "the CA is not in the Root store")
    argv = ["certutil", "-delstore", "Root", _hex(ca.fingerprint_sha1).lower()]
    res = runner.run(argv, check=False)
    if res.returncode != 0:
        reason = (
            f"certutil exited {res.returncode}: {_first_line(res)}; "
            f"from an Administrator prompt run: {' '.join(argv)}"
        )
        return TrustResult("skipped", "Root", reason)
    return TrustResult("removed", "Root", "deleted from the machine Root store")


def _nss_databases(home: Path) -> list[Path]:
    dbs: list[Path] = []
    if (home / ".pki/nssdb/cert9.db").exists():
        dbs.append(home / ".pki/nssdb")
    for profiles in (home / ".mozilla/firefox", home / "snap/firefox/common/.mozilla/firefox"):
        if profiles.is_dir():
            dbs.extend(sorted(p.parent for p in profiles.glob("*/cert9.db")))
    return dbs


def _install_nss(ca: CA, runner: Runner, home: Path) -> list[str]:
    """Chrome and Firefox on Linux keep their own NSS stores; add the CA where certutil exists."""
    dbs = _nss_databases(home)
    if not dbs or runner.which("certutil") is None:
        return []
    done: list[str] = []
    for db in dbs:
        # Drop a previous llmtap CA first so a regenerated CA replaces rather than piles up.
        runner.run(["certutil", "-d", f"sql:{db}", "-D", "-n", NSS_NICKNAME], check=False)
        res = runner.run(
            [
                "certutil",
                "-d",
                f"sql:{db}",
                "-A",
                "-t",
                "C,,",
                "-n",
                NSS_NICKNAME,
                "-i",
                str(ca.paths.cert),
            ],
            check=False,
        )
        if res.returncode == 0:
            done.append(str(db))
    return done


def _install_macos(ca: CA, runner: Runner, cfg: TrustConfig) -> TrustResult:
    store = str(cfg.keychain)
    if is_trusted(ca, runner, cfg):
        return TrustResult("already", store, "the CA is in the keychain")
    argv = [
        "security",
        "add-trusted-cert",
        "-d",
        "-r",
        "trustRoot",
        "-k",
        store,
        str(ca.paths.cert),
    ]
    res = runner.run(argv, check=False)
    if res.returncode != 0:
        reason = f"security exited {res.returncode}: {_first_line(res)}; as admin run: sudo {' '.join(argv)}"
        return TrustResult("skipped", store, reason, manual_guide(ca.paths.cert, reason))
    return TrustResult("installed", store, "added to the System keychain as a trusted root")


def _install_windows(ca: CA, runner: Runner) -> TrustResult:
    if is_trusted(ca, runner, TrustConfig(platform="win32")):
        return TrustResult("already", "Root", "the CA is in the Root store")
    argv = ["certutil", "-addstore", "Root", str(ca.paths.cert)]
    res = runner.run(argv, check=False)
    if res.returncode != 0:
        reason = (
            f"certutil exited {res.returncode}: {_first_line(res)}; "
            f"from an Administrator prompt run: {' '.join(argv)}"
        )
        return TrustResult("skipped", "Root", reason, manual_guide(ca.paths.cert, reason))
    return TrustResult("installed", "Root", "added to the machine Root store")


def _same_file_content(path: Path, text: str) -> bool:
    try:
        return path.read_text("ascii") == text
    except (OSError, UnicodeDecodeError):
        return False


def _os_reason(exc: OSError, path: Path) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied writing {path}; run as root: sudo llmtap ca trust"
    if exc.errno == errno.EROFS:
        return f"{path.parent} is on a read-only file system"
    return f"cannot write {path}: {exc.strerror or exc}"


def _first_line(res: RunResult) -> str:
    text = (res.stderr or res.stdout).strip()
    return text.splitlines()[0][:200] if text else "no output"


def _hex(value: str) -> str:
    return re.sub(r"[^0-9A-Fa-f]", "", value).upper()
