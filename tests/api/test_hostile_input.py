"""Hostile clients against the real api: a clear 4xx JSON error, never a 500, and nothing
learnt about other users' orders.

Non-ASCII digits ('²', '٣') pass `str.isdigit()` and then break `int()`: every parser takes
ASCII digits only. The fuzz sends arbitrary bytes in the authentication headers, seeded."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness.api import Trader, funded, limit, signed_headers
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


async def test_cancelling_another_users_order_reads_as_an_unknown_one(
    http: httpx.AsyncClient,
) -> None:
    """No order-existence oracle: a live order of someone else and an id nobody has answer
    alike, so ids cannot be probed for live orders."""
    owner = await funded(http, USD="1000")
    placed = (await owner.place(**limit("buy", "100.00", "1.0000"))).json()
    live = placed["order_id"]
    prefix, _, number = live.rpartition(".")
    unknown = f"{prefix}.{int(number, 16) + 1_000_000:0{len(number)}x}"
    prober = await funded(http, USD="1")
    answers = [await prober.delete(f"/api/v1/order/{order_id}") for order_id in (live, unknown)]
    assert answers[0].status_code == answers[1].status_code == 404, [a.text for a in answers]
    assert (
        answers[0].json()
        == answers[1].json()
        == {
            "code": "unknown_order",
            "message": "no such open order",
        }
    )
    assert (await stored_order(owner, live))["status"] == "new"


async def stored_order(trader: Trader, order_id: str, timeout: float = 20) -> dict[str, Any]:
    """The order as GET /order reads it: from PostgreSQL, once dbproc has stored it."""
    deadline = time.monotonic() + timeout
    while (answer := await trader.get(f"/api/v1/order/{order_id}")).status_code == 404:
        assert time.monotonic() < deadline, f"{order_id} was never stored"
        await asyncio.sleep(0.1)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found
