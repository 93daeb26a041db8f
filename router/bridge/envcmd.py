"""What ``llmtap env`` prints and ``llmtap run`` sets: proxy and CA variables for one terminal
or command, shell quoting per shell, and the combined CA bundle (system roots + llmtap CA)."""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

Shell = Literal["bash", "zsh", "fish", "powershell"]
SHELLS: tuple[Shell, ...] = ("bash", "zsh", "fish", "powershell")
NO_PROXY = "localhost,127.0.0.1,::1"
KNOWN_BUNDLES: tuple[Path, ...] = (
    Path("/etc/ssl/certs/ca-certificates.crt"),  # Debian, Ubuntu, Arch, Alpine
    Path("/etc/pki/tls/certs/ca-bundle.crt"),  # Fedora, RHEL
    Path("/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"),
    Path("/etc/ssl/ca-bundle.pem"),  # openSUSE
    Path("/etc/ssl/cert.pem"),  # macOS, BSDs
    Path("/usr/local/etc/openssl/cert.pem"),
    Path("/opt/homebrew/etc/openssl@3/cert.pem"),
)
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def proxy_env(
    proxy_url: str, ca_bundle_path: Path, *, node_ca_path: Path | None = None
) -> dict[str, str]:
    """Variables that send a process's HTTP(S) through llmtap and make it trust llmtap's CA.

    ``ca_bundle_path`` must be the *combined* bundle: these variables replace the default roots.
    ``node_ca_path`` should be llmtap's CA alone, since Node adds NODE_EXTRA_CA_CERTS to its
    built-in roots (it defaults to the bundle, which works but duplicates every root)."""
    bundle = str(ca_bundle_path)
    return {
        "HTTP_PROXY": proxy_url,
        "HTTPS_PROXY": proxy_url,
        "http_proxy": proxy_url,
        "https_proxy": proxy_url,
        "NO_PROXY": NO_PROXY,
        "no_proxy": NO_PROXY,
        "SSL_CERT_FILE": bundle,
        "REQUESTS_CA_BUNDLE": bundle,
        "NODE_EXTRA_CA_CERTS": str(node_ca_path or ca_bundle_path),
        "CURL_CA_BUNDLE": bundle,
        "GIT_SSL_CAINFO": bundle,
    }


def render_env(env: Mapping[str, str], shell: Shell = "bash") -> str:
    """Lines to ``eval`` in ``shell``; every value is quoted so nothing in it is expanded."""
    lines: list[str] = []
    for name, value in env.items():
        if not _NAME_RE.match(name):
            raise ValueError(f"not an environment variable name: {name!r}")
        if shell in ("bash", "zsh"):
            lines.append(f"export {name}={_posix_quote(value)}")
        elif shell == "fish":
            lines.append(f"set -gx {name} {_fish_quote(value)}")
        elif shell == "powershell":
            lines.append(f"$env:{name} = {_powershell_quote(value)}")
        else:
            raise ValueError(f"unknown shell {shell!r}; one of {', '.join(SHELLS)}")
    return "\n".join(lines) + "\n"


def _posix_quote(value: str) -> str:
    # Single quotes suppress every expansion; a literal ' is closed, escaped, reopened.
    return "'" + value.replace("'", "'\\''") + "'"


def _fish_quote(value: str) -> str:
    # In fish single quotes only \\ and \' are special.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _powershell_quote(value: str) -> str:
    # Verbatim string: '' is the only escape (PowerShell also treats curly quotes as quotes).
    return "'" + re.sub(r"(['\u2018\u2019\u201a\u201b])", r"\1\1", value) + "'"


def find_system_bundle(candidates: Sequence[Path] | None = None) -> Path | None:
    """The OS's PEM bundle of trusted roots: what OpenSSL was built with, then known places."""
    if candidates is None:
        paths = ssl.get_default_verify_paths()
        found = [Path(p) for p in (paths.cafile, paths.openssl_cafile) if p]
        candidates = [*found, *KNOWN_BUNDLES]
    return next((p for p in candidates if p.is_file() and os.access(p, os.R_OK)), None)


def combined_ca_bundle(
    ca_pem: Path,
    out: Path,
    system_bundle: Path | None = None,
    *,
    extra: Sequence[Path] = (),
    candidates: Sequence[Path] | None = None,
) -> Path:
    """Write ``out`` = system roots + ``extra`` (e.g. the upstream CA) + llmtap's CA, for tools
    that replace rather than add roots. Without any system bundle it holds only our CAs, which
    still lets traffic through llmtap verify."""
    source = system_bundle or find_system_bundle(candidates)
    parts: list[bytes] = []
    if source is not None:
        parts.append(source.read_bytes())
    parts.extend(p.read_bytes() for p in extra)
    parts.append(ca_pem.read_bytes())
    data = b"".join(p if p.endswith(b"\n") else p + b"\n" for p in parts)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return out


def run_environment(
    base: Mapping[str, str], proxy_url: str, ca_bundle_path: Path, *, node_ca_path: Path | None
) -> dict[str, str]:
    """The environment for ``llmtap run -- CMD``: the caller's, with the proxy variables over it."""
    env = dict(base)
    env.update(proxy_env(proxy_url, ca_bundle_path, node_ca_path=node_ca_path))
    return env
