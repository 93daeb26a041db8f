"""The nine agents as data (``agents.json``, user-overridable): hosts, wire format, chat URL
patterns, honest divert support and User-Agent markers; lookups by host, path and UA."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from router.bridge.bypass import glob_match
from router.formats import format_for_path
from router.netaddr import normalize_host

DEFAULT_FILE = Path(__file__).with_name("agents.json")


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChatPath(_Config):
    pattern: str  # a path glob where only '*' is special; the query string is ignored
    # Only for formats without a codec (zed, connect-rpc, ...): the codecs detect their own
    # from the path, so the catalog never restates (or contradicts) them.
    format: str | None = None

    @model_validator(mode="after")
    def _known(self) -> ChatPath:
        if self.format is None and format_for_path(self.pattern) is None:
            raise ValueError(f"chat path {self.pattern}: no codec claims it, so name its format")
        return self


class Agent(_Config):
    agent_id: str
    display_name: str
    hosts: tuple[str, ...] = ()
    format: str
    chat_paths: tuple[ChatPath, ...] = ()
    divert: bool
    capture_only_reason: str | None = None
    user_agents: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _honest(self) -> Agent:
        if not self.divert and not self.capture_only_reason:
            raise ValueError(f"{self.agent_id}: a capture-only agent must say why")
        return self

    def chat_format(self, path: str) -> str | None:
        """The wire format of a chat call at ``path``, or None when the path is not one."""
        bare = path.split("?", 1)[0].split("#", 1)[0]
        for chat in self.chat_paths:
            if glob_match(chat.pattern, bare):
                return chat.format or format_for_path(bare)
        return None


class AgentCatalog(_Config):
    agents: tuple[Agent, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> AgentCatalog:
        ids = [a.agent_id for a in self.agents]
        if len(set(ids)) != len(ids):
            raise ValueError("agent ids must be unique")
        owners: dict[str, str] = {}
        for a in self.agents:
            for h in a.hosts:
                if owners.setdefault(h.lower(), a.agent_id) != a.agent_id:
                    raise ValueError(
                        f"host {h} belongs to both {owners[h.lower()]} and {a.agent_id}"
                    )
        return self

    def get(self, agent_id: str) -> Agent | None:
        return next((a for a in self.agents if a.agent_id == agent_id), None)

    def agent_for_host(self, host: str) -> Agent | None:
        h = normalize_host(host, authority=True)
        return next((a for a in self.agents if h in (x.lower() for x in a.hosts)), None)

    def agent_for_user_agent(self, user_agent: str) -> Agent | None:
        ua = user_agent.lower()
        return next((a for a in self.agents if any(m.lower() in ua for m in a.user_agents)), None)

    def all_hosts(self) -> list[str]:
        return sorted({h.lower() for a in self.agents for h in a.hosts})


def load_catalog(path: Path | None = None) -> AgentCatalog:
    """Read the catalog from ``path`` (a user's edited copy) or the packaged defaults."""
    return AgentCatalog.model_validate_json((path or DEFAULT_FILE).read_bytes())


@cache
def default_catalog() -> AgentCatalog:
    return load_catalog()


def agent_for_host(host: str, catalog: AgentCatalog | None = None) -> Agent | None:
    return (catalog or default_catalog()).agent_for_host(host)


def is_chat_path(agent: Agent, path: str) -> bool:
    return agent.chat_format(path) is not None


def all_hosts(catalog: AgentCatalog | None = None) -> list[str]:
    return (catalog or default_catalog()).all_hosts()


def hosts_of(agent_ids: Iterable[str], catalog: AgentCatalog | None = None) -> list[str]:
    cat = catalog or default_catalog()
    return sorted({h for i in agent_ids if (a := cat.get(i)) for h in a.hosts})
