"""Where a passthrough call really goes: the origin's addresses from DNS (dnspython, A and
AAAA, TTLs honoured), never from the hosts file llmtap may have pointed at itself, and the
loop check that refuses to connect back into one of our own listeners."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # dnspython is imported at the first lookup: it pulls in httpcore and anyio
    import dns.asyncresolver

MIN_TTL = 5.0  # a zero TTL would mean one lookup per request
MAX_TTL = 3600.0
MAX_ENTRIES = 4096


class OriginError(Exception):
    """The origin's name could not be resolved through DNS."""


@dataclass(frozen=True, slots=True)
class Nameserver:
    address: str
    port: int = 53


def parse_nameservers(specs: Sequence[str]) -> list[Nameserver]:
    """``1.1.1.1``, ``1.1.1.1:5353``, ``::1``, ``[::1]:5353``. Raises ValueError."""
    out: list[Nameserver] = []
    for raw in specs:
        spec = raw.strip()
        if not spec:
            continue
        port = 53
        if spec.startswith("["):
            host, _, rest = spec[1:].partition("]")
            if rest.startswith(":"):
                port = int(rest[1:])
        elif spec.count(":") == 1:
            host, _, p = spec.partition(":")
            port = int(p)
        else:
            host = spec
        ipaddress.ip_address(host)  # nameservers are addresses, never names
        if not 0 < port < 65536:
            raise ValueError(f"bad nameserver port in {raw!r}")
        out.append(Nameserver(host, port))
    return out


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_ip(host: str) -> bool:
    return _ip(host) is not None


def is_own_listener(address: str, port: int, own_ports: Collection[int]) -> bool:
    """True when ``address:port`` is one of this process's listeners (a loop)."""
    ip = _ip(address)
    if ip is None:
        return address.lower() == "localhost" and port in own_ports
    return (ip.is_loopback or ip.is_unspecified) and port in own_ports


class OriginResolver:
    """Resolves origin hosts with dnspython; an empty nameserver list means the system's
    configured resolvers (``/etc/resolv.conf`` or the OS equivalent, not the hosts file)."""

    def __init__(
        self,
        nameservers: Sequence[Nameserver] = (),
        *,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nameservers = list(nameservers)
        self.timeout = timeout
        self.clock = clock
        self._cache: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._pending: dict[str, asyncio.Future[tuple[str, ...]]] = {}
        self._resolver: dns.asyncresolver.Resolver | None = None

    def _get_resolver(self) -> dns.asyncresolver.Resolver:
        if self._resolver is None:
            import dns.asyncresolver
            import dns.nameserver

            if self.nameservers:
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = [
                    dns.nameserver.Do53Nameserver(ns.address, ns.port) for ns in self.nameservers
                ]
            else:
                resolver = dns.asyncresolver.Resolver()
            resolver.lifetime = self.timeout
            self._resolver = resolver
        return self._resolver

    def cached(self, host: str) -> tuple[str, ...] | None:
        entry = self._cache.get(host.lower().rstrip("."))
        if entry is not None and entry[0] > self.clock():
            return entry[1]
        return None

    async def resolve(self, host: str) -> tuple[str, ...]:
        """The origin's addresses, IPv4 first then IPv6. Raises OriginError."""
        name = host.lower().rstrip(".")
        if is_ip(name):
            return (name.strip("[]"),)
        hit = self.cached(name)
        if hit is not None:
            return hit
        pending = self._pending.get(name)
        if pending is None:
            pending = asyncio.ensure_future(self._lookup(name))
            self._pending[name] = pending
            pending.add_done_callback(lambda _f: self._pending.pop(name, None))
        return await asyncio.shield(pending)

    async def _lookup(self, name: str) -> tuple[str, ...]:
        resolver = self._get_resolver()
        results = await asyncio.gather(
            self._query(resolver, name, "A"), self._query(resolver, name, "AAAA")
        )
        addresses: list[str] = []
        ttls: list[float] = []
        errors: list[str] = []
        for found in results:
            if isinstance(found, str):
                errors.append(found)
                continue
            addrs, ttl = found
            addresses.extend(addrs)
            if addrs:
                ttls.append(ttl)
        if not addresses:
            raise OriginError(f"cannot resolve {name} through DNS: {'; '.join(errors)}")
        ttl = min(max(min(ttls), MIN_TTL), MAX_TTL)
        if len(self._cache) >= MAX_ENTRIES:
            self._cache.clear()
        result = tuple(addresses)
        self._cache[name] = (self.clock() + ttl, result)
        return result

    @staticmethod
    async def _query(
        resolver: dns.asyncresolver.Resolver, name: str, rdtype: str
    ) -> tuple[list[str], float] | str:
        import dns.exception
        import dns.resolver

        try:
            answer = await resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NoAnswer:
            return [], 0.0
        except (dns.exception.DNSException, OSError) as exc:
            return f"{rdtype}: {exc}"
        rrset = answer.rrset
        if rrset is None:
            return [], 0.0
        return [r.to_text() for r in rrset], float(rrset.ttl)
