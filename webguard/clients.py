"""Which client a request counts against, for every per-client limit (the admin login throttle, the
study's join limit, the demo's share of the analysis queue).

The connecting address as uvicorn reports it (``X-Forwarded-For`` only from a front end on
127.0.0.1; docs/security.md), with one change: an IPv6 address counts as its /64 network. An ISP
or a cloud host hands one subscriber a /64 (or more), so a client that rotates among its own IPv6
addresses would otherwise get a fresh limit with each one (2^64 of them). An IPv4-mapped IPv6
address counts as the IPv4 address.
"""

from __future__ import annotations

import ipaddress

IPV6_PREFIX = 64  # bits of an IPv6 address that name one subscriber
UNKNOWN = "unknown"


def client_key(host: str | None) -> str:
    """``"203.0.113.7"`` for an IPv4 address, ``"2001:db8:1:2::/64"`` for any IPv6 address in that
    network; a value that is no IP address (a Unix socket's name, a test client's ``"testclient"``)
    is returned as it is, ``"unknown"`` for none."""
    if not host:
        return UNKNOWN
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


def request_client(request: object) -> str:
    """:func:`client_key` of a Starlette/FastAPI/Gradio request's connecting address."""
    client = getattr(request, "client", None)
    return client_key(getattr(client, "host", None))


def scope_client(scope: dict) -> str:
    """:func:`client_key` of an ASGI scope's connecting address."""
    client = scope.get("client")
    return client_key(client[0] if client else None)
