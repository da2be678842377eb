"""Hostile query strings against the Binance-compatible api: Binance's error shape with a
4xx, never a 500. `orderId=²` passed `str.isdigit()` and broke `int()`; the fuzz sends
arbitrary text in each parameter of signed and public endpoints, seeded."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from collections.abc import Callable
from urllib.parse import urlencode

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.binance.conftest import Account
from tests.harness.stacks import Stack

Accounts = Callable[..., Account]
DIGITS = st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=6)
"""Digits of every script, and numbers such as '²': what `str.isdigit()` lets through."""
SIGNED = ("/api/v3/order", "/api/v3/myTrades", "/api/v3/allOrders")
PUBLIC = ("/api/v3/depth", "/api/v3/klines", "/api/v3/trades")


_UNIQUE = itertools.count()


def signed_query(account: Account, params: dict[str, str]) -> str:
    """Signed as Binance says; each query differs (its recvWindow), so that no request is
    refused as a replay of another."""
    window = str(5000 + next(_UNIQUE) % 50_000)
    query = urlencode({**params, "recvWindow": window, "timestamp": str(int(time.time() * 1000))})
    signature = hmac.new(account.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{query}&signature={signature}"


def assert_binance_refusal(answer: httpx.Response) -> None:
    described = (answer.request.method, str(answer.request.url), answer.status_code, answer.text)
    assert 400 <= answer.status_code < 500, described
    body = answer.json()
    assert set(body) == {"code", "msg"} and body["code"] < 0, described


def test_non_ascii_digits_in_an_order_id_are_an_illegal_parameter(
    stack: Stack, accounts: Accounts
) -> None:
    trader = accounts(USD="10")
    headers = {"X-MBX-APIKEY": trader.key}
    with httpx.Client(base_url=stack.api.url, timeout=10) as http:
        for order_id in ("²", "1²", "١٢"):
            for method in ("GET", "DELETE"):
                query = signed_query(trader, {"symbol": "BTCUSD", "orderId": order_id})
                answer = http.request(method, f"/api/v3/order?{query}", headers=headers)
                assert_binance_refusal(answer)
                assert answer.json()["code"] == -1100, answer.text


def test_fuzzed_query_parameters_never_get_a_500(stack: Stack, accounts: Accounts) -> None:
    trader = accounts(USD="10")
    headers = {"X-MBX-APIKEY": trader.key}
    names = ("symbol", "orderId", "limit", "startTime", "endTime", "fromId", "interval")
    with httpx.Client(base_url=stack.api.url, timeout=10) as http:

        @settings(
            max_examples=150,
            derandomize=True,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(name=st.sampled_from(names), value=st.one_of(st.text(max_size=30), DIGITS))
        def probe(name: str, value: str) -> None:
            params = {"symbol": "BTCUSD", "interval": "1m", name: value}
            for path in SIGNED:
                query = signed_query(trader, params)
                answer = http.get(f"{path}?{query}", headers=headers)
                if answer.status_code != 200:
                    assert_binance_refusal(answer)
                    assert answer.json()["code"] != -1022, answer.text  # parameters were read
            for path in PUBLIC:
                answer = http.get(f"{path}?{urlencode(params)}")
                if answer.status_code != 200:
                    assert_binance_refusal(answer)

        probe()
