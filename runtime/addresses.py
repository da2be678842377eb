"""The client's address, which rate limits and failure counts key on (the api's and ws's).

Forwarding headers are believed only from configured proxies (`trusted_proxies`): anyone
else could name a new address in each request and escape every per-address limit. Behind
trusted proxies the client is the last hop in `X-Forwarded-For` that is not one of them: each
proxy appends the address it was connected from, so hops to the left of the last untrusted
one are whatever that client wrote. An IPv6 client is keyed by its /64, which one host
usually has to itself; one address of it would be one bucket of 2**64.
"""

import ipaddress
from collections.abc import Iterable

from starlette.requests import HTTPConnection

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_MAX_HOP = 64
"""Characters of an unparsable hop kept as its key (only a misconfigured proxy sends one)."""


def trusted_networks(networks: list[str]) -> list[str]:
    """`networks` if each is an address or a CIDR network (a settings validator of the api and
    ws); ValueError otherwise."""
    for network in networks:
        ipaddress.ip_network(network, strict=False)
    return networks


class ClientAddresses:
    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self.trusted = tuple(ipaddress.ip_network(net, strict=False) for net in trusted_proxies)

    def of(self, connection: HTTPConnection) -> str:
        peer = connection.client.host if connection.client else "unknown"
        return self.resolve(peer, connection.headers.getlist("x-forwarded-for"))

    def resolve(self, peer: str, forwarded_for: list[str]) -> str:
        """The address of a client connected from `peer` with these X-Forwarded-For headers
        (ws passes on what its WebSocket clients came with: api.binance.routes.ws_api)."""
        if self.trusted and self._is_trusted(peer):
            peer = self._forwarded(forwarded_for, peer)
        return _bucket(peer) if ":" in peer else peer

    def _forwarded(self, forwarded_for: list[str], peer: str) -> str:
        """The last untrusted hop of X-Forwarded-For (all its headers, in order); the first
        hop if all are trusted; the peer if there is none."""
        hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
        hops = [hop for hop in hops if hop]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                return hop[:_MAX_HOP]
        return hops[0] if hops else peer

    def _is_trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.trusted)


def _bucket(host: str) -> str:
    """An IPv6 address's /64 (an IPv4-mapped one as its IPv4 address); anything else as is."""
    try:
        address = ipaddress.IPv6Address(host)
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))
