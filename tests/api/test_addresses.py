"""The client address rate limits and failure counts key on (runtime/addresses.py), offline; the
black-box tests are in test_access.py."""

from __future__ import annotations

import pydantic
import pytest
from starlette.requests import Request

from api.config import Settings
from runtime.addresses import ClientAddresses


def _request(peer: str, *forwarded_for: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded_for]
    return Request({"type": "http", "client": (peer, 50000), "headers": headers})


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    addresses = ClientAddresses(Settings(jwt_secret="x" * 32, secrets_key="y" * 32).trusted_proxies)
    assert addresses.of(_request("127.0.0.1", "198.51.100.7")) == "127.0.0.1"


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        # A trusted proxy: the last hop it was not.
        ("10.1.2.3", ("198.51.100.7",), "198.51.100.7"),
        ("10.1.2.3", ("6.6.6.6, 198.51.100.7",), "198.51.100.7"),
        ("10.1.2.3", ("6.6.6.6", "198.51.100.7, 10.0.0.9"), "198.51.100.7"),
        # Every hop trusted: the first; none: the proxy itself.
        ("10.1.2.3", ("10.0.0.8, 10.0.0.9",), "10.0.0.8"),
        ("10.1.2.3", (), "10.1.2.3"),
        ("10.1.2.3", ("",), "10.1.2.3"),
        # Not a trusted proxy: whatever it forwards is ignored.
        ("192.0.2.1", ("198.51.100.7",), "192.0.2.1"),
        # IPv6 clients by their /64; an IPv4-mapped one as its IPv4 address.
        ("10.1.2.3", ("2001:db8:1:2:aaaa::1",), "2001:db8:1:2::/64"),
        ("2001:db8:1:2::5", (), "2001:db8:1:2::/64"),
        ("10.1.2.3", ("::ffff:198.51.100.7",), "198.51.100.7"),
        ("fd00::1", ("198.51.100.7",), "198.51.100.7"),
    ],
)
def test_the_client_is_the_last_untrusted_hop(
    peer: str, forwarded_for: tuple[str, ...], client: str
) -> None:
    addresses = ClientAddresses(["10.0.0.0/8", "fd00::/8"])
    assert addresses.of(_request(peer, *forwarded_for)) == client


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    with pytest.raises(pydantic.ValidationError, match="trusted_proxies"):
        Settings(jwt_secret="x" * 32, secrets_key="y" * 32, trusted_proxies=["ingress-nginx"])
