"""A throwaway machine for AgentBridge tests: a temp hosts file with a user's own lines, a temp
CA anchors dir + bundle, and recording fakes of the OS tools (resolvectl,
update-ca-certificates, certutil) that the llmtap process finds through LLMTAP_TOOLS_PATH alone.
Nothing real (/etc/hosts, the trust store, the resolver) is touched."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from certs.ca import load_or_create
from tests.addons.proc import ROOT, Llmtap, start_llmtap
from tests.router.bridge.fakeos import FakeOS

# A user's hosts file: comments, blank lines, tabs, an IPv6 entry, no newline at the end.
ORIGINAL = (
    b"# /etc/hosts of a user\n"
    b"127.0.0.1\tlocalhost\n"
    b"::1     localhost ip6-localhost\n"
    b"\n"
    b"10.0.0.5 intranet.example   # mine, keep\n"
    b"192.168.1.9 api.anthropic.com.example"
)


@dataclass
class BridgeEnv:
    root: Path
    hosts: Path
    fake: FakeOS
    anchors: Path
    bundle: Path
    # What a test changes in the environment of the server and the CLI alike (None: unset).
    overrides: dict[str, str | None] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def env(self) -> dict[str, str]:
        env = {
            "LLMTAP_HOSTS_FILE": str(self.hosts),
            "LLMTAP_TOOLS_PATH": str(self.fake.bin),
            "LLMTAP_CA_ANCHORS_DIR": str(self.anchors),
            "LLMTAP_CA_BUNDLE": str(self.bundle),
            "LLMTAP_BRIDGE_PORT": "0",
            "HOME": str(self.root / "home"),
        }
        for name, value in self.overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def start(self, **extra_env: str) -> Llmtap:
        return start_llmtap(self.data_dir, env={**self.env, **extra_env})

    def cli(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "addons.main", *argv, "--data-dir", str(self.data_dir)],
            cwd=ROOT,
            env={
                **{k: v for k, v in os.environ.items() if k not in self.overrides},
                "PYTHONPATH": str(ROOT),
                "LLMTAP_LOG_LEVEL": "WARNING",
                **self.env,
            },
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def bridge_env(tmp_path: Path) -> BridgeEnv:
    hosts = tmp_path / "etc" / "hosts"
    hosts.parent.mkdir()
    hosts.write_bytes(ORIGINAL)
    hosts.chmod(0o644)
    (tmp_path / "home").mkdir()
    anchors = tmp_path / "anchors"
    anchors.mkdir()
    other = load_or_create(tmp_path / "some-public-root")
    roots = tmp_path / "system-roots.pem"
    roots.write_text(other.cert_pem)
    bundle = tmp_path / "ca-certificates.crt"
    bundle.write_text(other.cert_pem)
    fake = FakeOS(tmp_path / "os", ("resolvectl", "update-ca-certificates", "certutil"))
    fake.state = {
        "ca": {"system_roots": str(roots), "anchors": str(anchors), "bundle": str(bundle)}
    }
    return BridgeEnv(tmp_path, hosts, fake, anchors, bundle)
