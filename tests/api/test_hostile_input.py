"""Hostile headers and bodies against the real api: a clear 4xx JSON error, never a 500.

Non-ASCII digits ('²', '٣') pass `str.isdigit()` and then break `int()`: every parser takes
ASCII digits only. The fuzz sends arbitrary bytes in the authentication headers, seeded."""

from __future__ import annotations

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness.api import funded, signed_headers
from tests.harness.stacks import Stack

PATH = "/api/v1/balances"
# What h11 lets a client put in a header value: no CR, LF or NUL, no leading or trailing space.
FIELD_BYTES = [9, *range(0x20, 0x7F), *range(0x80, 0x100)]
"""What HTTP lets a header value hold (tab, space, visible ASCII, and obs-text)."""
HEADER_BYTES = (
    st.lists(st.sampled_from(FIELD_BYTES), min_size=1, max_size=40)
    .map(bytes)
    .filter(lambda value: value == value.strip(b" \t"))
)


async def test_non_ascii_digits_in_the_timestamp_are_a_401(http: httpx.AsyncClient) -> None:
    trader = await funded(http, USD="1")
    created = await http.post("/api/v1/api-keys", json={"scopes": ["read"]}, headers=trader.auth)
    key = created.json()
    for stamp in ("²", "¹²", "12³"):  # header bytes are Latin-1: these are one byte each
        headers = {**signed_headers(key["key"], key["secret"], "GET", PATH)}
        headers["X-API-TIMESTAMP"] = stamp
        raw = {name.encode(): value.encode("latin-1") for name, value in headers.items()}
        answer = await http.get(PATH, headers=raw)
        assert answer.status_code == 401, (stamp, answer.text)
        assert answer.json()["code"] == "unauthorized"


def test_fuzzed_authentication_headers_never_get_a_500(stack: Stack) -> None:
    with httpx.Client(base_url=stack.api.url, timeout=10) as http:

        @settings(
            max_examples=150,
            derandomize=True,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        @given(key=HEADER_BYTES, stamp=HEADER_BYTES, signature=HEADER_BYTES)
        def probe(key: bytes, stamp: bytes, signature: bytes) -> None:
            headers = {b"X-API-KEY": key, b"X-API-TIMESTAMP": stamp, b"X-API-SIGNATURE": signature}
            json_body = {**headers, b"Content-Type": b"application/json"}
            read = http.get(PATH, headers=headers)
            order = http.post("/api/v1/order", content=b"{}", headers=json_body)
            for answer in (read, order):
                described = (answer.request.method, answer.status_code, answer.text)
                assert 400 <= answer.status_code < 500, described
                assert set(answer.json()) >= {"code", "message"}, described

        probe()
