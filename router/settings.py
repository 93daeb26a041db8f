"""One settings model; layers: CLI flags > env ``LLMTAP_*`` > settings stored in the DB > defaults."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from router.errors import validation_error
from router.netaddr import is_loopback_name

log = logging.getLogger("llmtap.settings")


def _default_hosts_file() -> Path:
    if os.name == "nt":
        return Path(os.environ.get("SYSTEMROOT", r"C:\Windows")) / "System32/drivers/etc/hosts"
    return Path("/etc/hosts")


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    host: str = "127.0.0.1"
    port: int = Field(default=20128, ge=0, le=65535)
    proxy_port: int = Field(default=8080, ge=0, le=65535)
    bridge_port: int = Field(default=443, ge=0, le=65535)
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".llmtap")
    hosts_file: Path = Field(default_factory=_default_hosts_file)
    upstream_ca: Path | None = None
    require_api_key: bool = False
    require_login: bool = False
    buffer_size: int = Field(default=1000, ge=1, le=1_000_000)
    max_body_kb: int = Field(default=1024, ge=1, le=1 << 20)
    guard_minutes: int = Field(default=30, ge=1, le=24 * 60)
    max_request_mb: int = Field(default=32, ge=1, le=4096)
    # A whole (non-streamed) upstream reply is held in memory to be translated: bounded.
    max_response_mb: int = Field(default=32, ge=1, le=4096)
    tls_intercept: bool = True
    http_proxy_autostart: bool = False
    bridge_autostart: bool = False
    # Nameservers for resolving real origins on passthrough ("ip[:port]", comma-separated;
    # empty: the system's resolvers, never the hosts file).
    dns_servers: str = ""
    # Port of the real origin for passthrough of hosts llmtap resolves itself (0 = 443 for
    # the AgentBridge, the request's port otherwise). For tests and non-standard origins.
    origin_port: int = Field(default=0, ge=0, le=65535)
    connect_timeout_s: float = Field(default=10.0, gt=0, le=86_400)
    first_byte_timeout_s: float = Field(default=120.0, gt=0, le=86_400)
    idle_timeout_s: float = Field(default=120.0, gt=0, le=86_400)
    log_level: str = "info"
    # Where OS tools (gsettings, networksetup, reg, netsh, update-ca-certificates, ...) are
    # looked up; default: PATH. Tests point it at recording fakes so nothing real is touched.
    tools_path: str | None = None
    # The OS trust store llmtap writes its CA into (Linux): an anchors directory whose bundle
    # is rebuilt by update-ca-certificates, and the bundle that says whether the CA is trusted.
    # Default: the distro's own (certs/trust.py); tests point both at temp files.
    ca_anchors_dir: Path | None = None
    ca_bundle: Path | None = None
    # Where the store lives: sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB (a team
    # gateway: several instances on one server). None: SQLite in the data dir. Kept out of
    # repr: the URL may carry a password.
    database_url: str | None = Field(default=None, repr=False, max_length=4096)
    # A team gateway (``llmtap up --gateway``): router, management API and UI, no capture.
    gateway: bool = False
    # The management token every instance of a gateway shares (else: the data dir's token).
    management_token: str | None = Field(default=None, repr=False, min_length=16)

    @model_validator(mode="after")
    def _exposed_needs_keys(self) -> Settings:
        # Checked on every assignment too (validate_assignment): keys cannot be switched off
        # while the router API is reachable from the network.
        if not self.require_api_key and not is_loopback_name(self.host):
            raise ValueError(
                f"listening on the non-loopback address '{self.host}' needs requireApiKey on "
                "(otherwise anyone who can reach it spends your provider keys)"
            )
        if self.gateway and not is_loopback_name(self.host) and not self.management_token:
            raise ValueError(
                f"a gateway on the non-loopback address '{self.host}' needs a management "
                "token (LLMTAP_MANAGEMENT_TOKEN, the same on every instance): its management "
                "API and UI are served to the network"
            )
        if self.database_url is not None:
            from router.errors import BadRequest
            from router.store.db import engine_of

            try:
                engine_of(self.database_url)
            except BadRequest as exc:
                raise ValueError(
                    "database_url must be sqlite:///PATH or postgresql://USER@HOST/DB"
                ) from exc
        return self

    @property
    def db_path(self) -> Path:
        return self.data_dir / "llmtap.db"

    @property
    def confdir(self) -> Path:
        """The CA's folder (mitmproxy's ``confdir``)."""
        return self.data_dir / "ca"

    @property
    def database(self) -> Path | str:
        """What the store opens: the database URL, else the data dir's SQLite file."""
        return self.database_url or self.db_path

    @property
    def shared_database(self) -> bool:
        """Several instances may share this database (PostgreSQL)."""
        from router.store.db import engine_of

        return engine_of(self.database) == "postgres"


# Settings the API may change at runtime (GET/PATCH /api/settings); the rest are start-up only.
MUTABLE = frozenset(
    {"require_api_key", "require_login", "buffer_size", "max_body_kb", "guard_minutes",
     "proxy_port", "bridge_port", "tls_intercept", "max_request_mb"}
)  # fmt: skip

_ENV_PREFIX = "LLMTAP_"


def from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for name in Settings.model_fields:
        value = env.get(_ENV_PREFIX + name.upper())
        if value is not None and value != "":
            out[name] = value
    return out


def build(
    *,
    cli: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    stored: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the layers (later wins: defaults < stored < env < cli) and validate once."""
    merged: dict[str, Any] = {}
    for layer in (stored or {}, from_env(env), cli or {}):
        merged.update({k: v for k, v in layer.items() if v is not None})
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise validation_error(exc, "invalid settings") from exc


def load(cli: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """CLI > env > settings stored in the DB > defaults. The DB is found from the first three."""
    first = build(cli=cli, env=env)
    stored: dict[str, Any] = {}
    if first.shared_database or first.db_path.exists():
        from router.store import config as store_config
        from router.store import db as store_db

        where = store_db.redact_url(str(first.database))
        try:
            # Read only: migrating is for `up` and `llmtap db migrate`, not for every command.
            store_db.connect(first.database)
            if store_db.database.table_exists("setting"):
                stored = store_config.get_settings()
        except Exception:  # an unreadable DB must not stop the CLI from starting
            log.warning("could not read stored settings from %s", where, exc_info=True)
        finally:
            store_db.close_database()
    return build(cli=cli, env=env, stored=stored)
