"""Address spelling: the one host-name normalisation, one parser for IP literals (IPv4-mapped
IPv6 unwrapped to IPv4), and the loopback test every listener and Host check shares."""

from __future__ import annotations

import ipaddress

type IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def normalize_host(host: str, *, authority: bool = False) -> str:
    """``host`` without surrounding space, in lower case, without a trailing dot.

    With ``authority`` (a ``Host`` header, an SNI or ``host:port`` from a URL) the port and
    IPv6 brackets go too: ``[::1]:443`` -> ``::1``, ``API.Example.com.:8443`` ->
    ``api.example.com``. Without it they stay, so a validator can refuse a name that is not
    a bare host name."""
    name = host.strip().lower()
    if authority:
        if name.startswith("["):
            name = name[1 : name.find("]")] if "]" in name else name[1:]
        elif name.count(":") == 1:
            name = name.partition(":")[0]
    return name.rstrip(".")


def parse_ip(text: str) -> IP | None:
    """``text`` as an address (brackets and an IPv6 zone dropped, ``::ffff:a.b.c.d`` given as
    ``a.b.c.d``), or None when it is not an address literal."""
    try:
        addr = ipaddress.ip_address(text.strip().strip("[]").partition("%")[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def is_loopback_name(host: str) -> bool:
    """``localhost`` or a loopback address in any spelling; "" (every interface) is not."""
    name = normalize_host(host)
    if name == "localhost":
        return True
    ip = parse_ip(name)
    return ip is not None and ip.is_loopback
