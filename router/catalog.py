"""The router's in-memory view of its configuration: connections, aliases, combos, chains.

The request path reads this snapshot and never touches the database; management writes go
to the store first and then replace the affected part of the catalog.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from router.store.records import Combo, FallbackChain, ProviderConnection


@dataclass(slots=True)
class Catalog:
    connections: dict[str, ProviderConnection] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    combos: dict[str, Combo] = field(default_factory=dict)  # by name
    chains: dict[str, FallbackChain] = field(default_factory=dict)  # by model

    def set_connections(self, conns: Iterable[ProviderConnection]) -> None:
        self.connections = {c.id: c for c in conns}

    def set_combos(self, combos: Iterable[Combo]) -> None:
        self.combos = {c.name: c for c in combos}

    def set_aliases(self, aliases: dict[str, str]) -> None:
        self.aliases = dict(aliases)

    def set_chains(self, chains: Iterable[FallbackChain]) -> None:
        self.chains = {c.model: c for c in chains}

    def active_connections(self) -> list[ProviderConnection]:
        """Active connections in routing order: priority, then creation order (the oldest
        first), so a bare model listed by several connections always goes to the same one."""
        return sorted(
            (c for c in self.connections.values() if c.is_active),
            key=lambda c: (
                c.priority,
                c.created_at.timestamp() if c.created_at else 0.0,
                c.name,
            ),
        )

    def connection_by_ref(self, ref: str) -> list[ProviderConnection]:
        """Connections a ``provider/`` prefix names: an id, a connection name, or a kind."""
        if ref in self.connections:
            return [self.connections[ref]]
        by_name = [c for c in self.connections.values() if c.name == ref]
        if by_name:
            return by_name
        return [c for c in self.active_connections() if c.provider == ref]

    def model_ids(self) -> list[tuple[str, str]]:
        """Every model a client may ask for, with its owner: combos, aliases, ``conn/model``."""
        out: list[tuple[str, str]] = [(name, "combo") for name in sorted(self.combos)]
        out += [(alias, "alias") for alias in sorted(self.aliases)]
        for conn in self.active_connections():
            out += [(f"{conn.name}/{m}", conn.provider) for m in conn.models]
        return out
