"""The Binance-compatible REST API driven by ccxt's `binance` class from PyPI, as a trader
would use it: only its URLs changed (every `urls["api"]` entry pointed at the api), against a
real stack (api, engines, dbproc, Redis, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

import ccxt
import httpx
import pytest

from tests.binance.conftest import Account
from tests.harness.stacks import Stack

Accounts = Callable[..., Account]


def local_urls(urls: dict[str, str], base: str) -> dict[str, str]:
    """Each of Binance's REST roots (`https://api.binance.com/api/v3`, `.../sapi/v1`,
    `https://fapi.binance.com/fapi/v1`, ...) with the same path on `base`."""
    return {name: base + "/" + url.split("/", 3)[3] for name, url in urls.items()}


def ccxt_binance(stack: Stack, account: Account | None = None) -> ccxt.binance:
    keys = {"apiKey": account.key, "secret": account.secret} if account else {}
    exchange = ccxt.binance({**keys, "timeout": 10_000})
    exchange.urls["api"] = local_urls(exchange.urls["api"], stack.api.url)
    return exchange


def test_unserved_paths_answer_in_binance_shape(stack: Stack) -> None:
    with httpx.Client(base_url=stack.api.url, timeout=10) as http:
        for method, path in [
            ("GET", "/api/v3/nope"),
            ("GET", "/sapi/v1/margin/nope"),
            ("POST", "/sapi/v1/nope"),
            ("GET", "/wapi/v3/accountStatus.html"),
            ("GET", "/api/v2/ping"),
            ("GET", "/fapi/v1/nope"),
            ("DELETE", "/api/v3/ping"),
        ]:
            answer = http.request(method, path)
            expected = 404 if method == "GET" or path != "/api/v3/ping" else 405
            assert answer.status_code == expected, (method, path)
            assert answer.json() == {"code": -1020, "msg": "This operation is not supported."}
        native = http.get("/api/v1/nope")
        assert native.status_code == 404 and native.json()["code"] == "not_found"


def test_unknown_endpoint_is_ccxts_own_error(stack: Stack, accounts: Accounts) -> None:
    """-1020 "This operation is not supported." is ccxt's BadRequest."""
    keyed = ccxt_binance(stack, accounts())
    with pytest.raises(ccxt.BadRequest, match="-1020"):
        keyed.sapi_get_margin_isolated_pair({"symbol": "BTCUSD"})
    with pytest.raises(ccxt.BadRequest, match="-1020"):
        keyed.public_get_historicaltrades({"symbol": "BTCUSD"})
