"""Origin resolution with dnspython against a loopback DNS server: A and AAAA, TTL cache, no
hosts file; nameserver specs; the loop check."""

from __future__ import annotations

import pytest

from router.bridge.origin import (
    Nameserver,
    OriginError,
    OriginResolver,
    parse_nameservers,
)
from tests.router.bridge.dnsfake import FakeDns


async def test_a_and_aaaa_cached_for_the_ttl() -> None:
    now = [1000.0]
    with FakeDns({"api.example": ["127.0.0.7", "::1"], "v6.example": ["::1"]}, ttl=30) as dns:
        resolver = OriginResolver([Nameserver("127.0.0.1", dns.port)], clock=lambda: now[0])
        assert await resolver.resolve("API.example.") == ("127.0.0.7", "::1")
        assert await resolver.resolve("api.example") == ("127.0.0.7", "::1")
        assert dns.queries[("api.example", "A")] == 1
        now[0] += 31  # the TTL ran out: asked again
        await resolver.resolve("api.example")
        assert dns.queries[("api.example", "A")] == 2
        assert await resolver.resolve("v6.example") == ("::1",)
        with pytest.raises(OriginError, match=r"missing\.example"):
            await resolver.resolve("missing.example")
        # "localhost" is a hosts-file name: DNS does not answer it here, and it is never read.
        with pytest.raises(OriginError):
            await resolver.resolve("localhost")
    assert await resolver.resolve("10.1.2.3") == ("10.1.2.3",)  # literals are not looked up


def test_nameserver_specs() -> None:
    assert parse_nameservers(["1.1.1.1", "127.0.0.1:5353", "::1", "[::1]:5300", " "]) == [
        Nameserver("1.1.1.1"),
        Nameserver("127.0.0.1", 5353),
        Nameserver("::1"),
        Nameserver("::1", 5300),
    ]
    for bad in ("dns.example", "127.0.0.1:0", "127.0.0.1:x"):
        with pytest.raises(ValueError):
            parse_nameservers([bad])
