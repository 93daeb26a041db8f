"""The certificate side of AgentBridge control: llmtap's CA (create, regenerate, trust,
untrust) and the upstream CA (the corporate TLS root upstream connections also trust: where
it came from, validated, persisted, applied live). :class:`router.bridge.control.BridgeControl`
holds one as ``certs``; the API and the offline CLI reach it there."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from certs import ca as ca_mod
from certs import trust as trust_mod
from certs.upstream import UpstreamCAError, validate_upstream_ca
from router.bridge.agents import AgentCatalog
from router.bridge.runner import CommandRunner
from router.errors import BadRequest, FieldError
from router.settings import Settings
from router.store import agents as store_agents

UPSTREAM_CA_ENV = "LLMTAP_UPSTREAM_CA"


def trust_config(settings: Settings) -> trust_mod.TrustConfig:
    """The OS trust store of this machine, or the one the settings point at (tests)."""
    if settings.ca_anchors_dir is None and settings.ca_bundle is None:
        return trust_mod.TrustConfig()
    anchors: tuple[trust_mod.AnchorStore, ...] = trust_mod.LINUX_ANCHORS
    if settings.ca_anchors_dir is not None:
        anchors = (trust_mod.AnchorStore(settings.ca_anchors_dir, ("update-ca-certificates",)),)
    bundles = trust_mod.LINUX_BUNDLES if settings.ca_bundle is None else (settings.ca_bundle,)
    return trust_mod.TrustConfig(platform="linux", anchors=anchors, bundles=bundles)


@dataclass
class CAControl:
    settings: Settings
    runner: CommandRunner
    trust: trust_mod.TrustConfig
    agents: AgentCatalog  # each agent's stored state says whether the CA is trusted
    # Set by the composition root of a process that has them:
    reload_ca: Callable[[], None] | None = None  # mitmproxy re-reads the CA from confdir
    # Rebuilds the upstream TLS roots of the router's client and the proxy.
    apply_upstream_ca: Callable[[Path], None] | None = None
    _pinned_by: str | None = field(
        default=None, init=False, repr=False
    )  # "env", "flag" or "" (none)

    # ------------------------------------------------------------------ llmtap's CA

    def ca(self) -> ca_mod.CA:
        return ca_mod.load_or_create(self.settings.confdir)

    def ca_exists(self) -> bool:
        return ca_mod.CAPaths.of(self.settings.confdir).key_and_cert.exists()

    def cert_trusted(self) -> bool:
        if not self.ca_exists():
            return False
        try:
            return trust_mod.is_trusted(self.ca(), self.runner, self.trust)
        except (ca_mod.CertError, OSError):
            return False

    def cert_info(self) -> dict[str, Any]:
        ca = self.ca()
        return {
            "path": str(ca.paths.cert),
            "fingerprint": ca.fingerprint_sha256,
            "fingerprintSha1": ca.fingerprint_sha1,
            "notAfter": ca.not_after.isoformat(),
            "subject": ca.cert.subject.rfc4514_string(),
            "trusted": trust_mod.is_trusted(ca, self.runner, self.trust),
        }

    def regenerate(self) -> dict[str, Any]:
        """A new key pair; the running proxy serves leaves from it at once; a CA that was
        trusted is replaced in the store by the new one (the old one is no longer needed)."""
        old = self.ca()
        was_trusted = trust_mod.is_trusted(old, self.runner, self.trust)
        new = ca_mod.regenerate(self.settings.confdir)
        reloaded = False
        if self.reload_ca is not None:
            self.reload_ca()
            reloaded = True
        out: dict[str, Any] = {
            "regenerated": True,
            "fingerprint": new.fingerprint_sha256,
            "previousFingerprint": old.fingerprint_sha256,
            "path": str(new.paths.cert),
            "reloaded": reloaded,
        }
        if was_trusted:
            out["trust"] = self._trust(new)
        out["trusted"] = trust_mod.is_trusted(new, self.runner, self.trust)
        if not out["trusted"]:
            out["hint"] = "tools that trusted the old CA must trust this one: llmtap ca trust"
        return out

    def trust_ca(self) -> dict[str, Any]:
        return self._trust(self.ca())

    def untrust_ca(self) -> dict[str, Any]:
        ca = self.ca()
        result = trust_mod.uninstall(ca, self.runner, self.trust).as_dict()
        result["trusted"] = trust_mod.is_trusted(ca, self.runner, self.trust)
        self._store_trusted(bool(result["trusted"]))
        return result

    def _trust(self, ca: ca_mod.CA) -> dict[str, Any]:
        result = trust_mod.install(ca, self.runner, self.trust).as_dict()
        result["trusted"] = trust_mod.is_trusted(ca, self.runner, self.trust)
        result["fingerprint"] = ca.fingerprint_sha256
        if not result["trusted"] and not result.get("guide"):
            result["guide"] = trust_mod.manual_guide(ca.paths.cert, str(result["detail"]))
        self._store_trusted(bool(result["trusted"]))
        return result

    def _store_trusted(self, trusted: bool) -> None:
        for agent in self.agents.agents:
            store_agents.set_agent_state(agent.agent_id, cert_trusted=trusted)

    # ------------------------------------------------------------------ upstream CA

    def _upstream_pin(self, stored: str | None) -> str | None:
        """Whether the env or the command line set the upstream CA (they win over the API's
        value). Decided once, before any live change can make the setting equal the stored
        value, and remembered."""
        if os.environ.get(UPSTREAM_CA_ENV):
            return "env"
        if self._pinned_by is None:
            effective = self.settings.upstream_ca
            pinned = effective is not None and str(effective) != str(stored)
            self._pinned_by = "flag" if pinned else ""
        return self._pinned_by or None

    def upstream_ca(self) -> dict[str, Any]:
        from router.store import config as store_config

        stored = store_config.get_settings().get("upstream_ca")
        effective = self.settings.upstream_ca
        source = self._upstream_pin(stored) or ("api" if stored else None)
        out: dict[str, Any] = {
            "path": str(effective) if effective is not None else None,
            "source": source,
            "stored": stored,
        }
        if effective is not None:
            try:
                found = validate_upstream_ca(effective)
                out |= {"valid": True, "subjects": found.subjects}
            except UpstreamCAError as exc:
                out |= {"valid": False, "error": str(exc)}
        return out

    def set_upstream_ca(self, path: str) -> dict[str, Any]:
        """Validate and persist; unless LLMTAP_UPSTREAM_CA / --upstream-ca win, apply it at
        once to every upstream connection made from now on (router and proxy alike)."""
        from router.store import config as store_config

        try:
            found = validate_upstream_ca(path)
        except UpstreamCAError as exc:
            raise BadRequest(str(exc), [FieldError("path", str(exc))]) from None
        pinned = self._upstream_pin(store_config.get_settings().get("upstream_ca"))
        store_config.set_settings({"upstream_ca": str(found.path)})
        applied = False
        if pinned is None and self.apply_upstream_ca is not None:
            self.settings.upstream_ca = found.path
            self.apply_upstream_ca(found.path)
            applied = True
        out = self.upstream_ca() | {"stored": str(found.path)}
        out["overriddenBy"] = pinned
        out["applied"] = applied
        # Without a running proxy and router (the offline CLI) the next start picks it up.
        out["appliesAfterRestart"] = pinned is None and not applied
        return out
