"""The Binance-compatible REST API driven by ccxt's `binance` class from PyPI, as a trader
would use it: only its URLs changed (every `urls["api"]` entry pointed at the api), against a
real stack (api, engines, dbproc, Redis, PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

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


def test_load_markets_with_a_key(stack: Stack, accounts: Accounts) -> None:
    """With a key ccxt also reads the margin pairs and the assets' flags (sapi), and the
    futures exchanges' markets (none here) when it loads markets."""
    exchange = ccxt_binance(stack, accounts(USD="100"))
    markets = exchange.load_markets()
    assert set(markets) == {"BTC/USD", "ETH/USD", "SOL/USD", "ADA/USD"}
    btc = markets["BTC/USD"]
    assert (btc["id"], btc["spot"], btc["active"]) == ("BTCUSD", True, True)
    assert (btc["precision"]["price"], btc["precision"]["amount"]) == (0.01, 0.0001)
    assert btc["limits"]["cost"]["min"] == 1.0
    assert markets["SOL/USD"]["active"] is False
    assert {"BTC", "ETH", "SOL", "ADA", "USD"} <= set(exchange.currencies)  # ccxt adds BNFCR
    usd = exchange.currencies["USD"]
    assert (usd["active"], usd["type"], usd["networks"]) == (True, "crypto", {})
    assert (usd["info"]["depositAllEnable"], usd["info"]["withdrawAllEnable"]) == (False, False)
    assert usd["info"]["free"] == "100.000000"
    assert exchange.fetch_status()["status"] == "ok"

    fee = exchange.fetch_trading_fee("BTC/USD")
    assert (fee["symbol"], fee["maker"], fee["taker"]) == ("BTC/USD", 0.001, 0.002)
    assert set(exchange.fetch_trading_fees()) == set(markets)
    commission = exchange.private_get_account_commission({"symbol": "BTCUSD"})
    assert commission["standardCommission"] == {
        "maker": "0.00100000", "taker": "0.00200000", "buyer": "0.00000000",
        "seller": "0.00000000",
    }  # fmt: skip
    with pytest.raises(ccxt.BadSymbol):
        exchange.private_get_account_commission({"symbol": "NOPEUSD"})


def test_aggregate_trades_and_average_price(stack: Stack, accounts: Accounts) -> None:
    seller, buyer = accounts(ETH="1"), accounts(USD="1000")
    seller.client.order_limit_sell(symbol="ETHUSD", quantity="0.3000", price="100.00")
    for _ in range(3):
        buyer.client.order_market_buy(symbol="ETHUSD", quantity="0.1000")
    asyncio.run(stack.stored("eth-usd"))
    exchange = ccxt_binance(stack)

    def agg(**params: Any) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = exchange.public_get_aggtrades({"symbol": "ETHUSD", **params})
        return answer

    first, second, third = everything = agg()
    ids = [trade["a"] for trade in everything]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert first == {
        "a": ids[0], "p": "100.00", "q": "0.1000", "f": ids[0], "l": ids[0],
        "T": first["T"], "m": False, "M": True,
    }  # fmt: skip
    assert agg(fromId=ids[1]) == [second, third]
    assert agg(fromId=ids[0], limit=2) == [first, second]
    assert agg(limit=1) == [third]
    assert agg(startTime=first["T"], endTime=third["T"]) == everything
    assert agg(startTime=third["T"] + 1) == []
    assert agg(endTime=first["T"] - 1) == []
    assert agg(endTime=third["T"], limit=2) == [second, third]
    with pytest.raises(ccxt.BadRequest, match="-1128"):
        agg(fromId=ids[0], startTime=first["T"])
    with pytest.raises(ccxt.ExchangeError, match="-1023"):
        agg(startTime=third["T"], endTime=first["T"])
    with pytest.raises(ccxt.BadRequest, match="-1100"):
        agg(limit=1001)

    trades = exchange.fetch_trades("ETH/USD")
    assert [t["id"] for t in trades] == [str(i) for i in ids]
    assert {(t["side"], t["price"], t["amount"], t["cost"]) for t in trades} == {
        ("buy", 100.0, 0.1, 10.0)
    }
    assert [t["id"] for t in exchange.fetch_trades("ETH/USD", since=second["T"])][-1] == str(ids[2])
    average = exchange.public_get_avgprice({"symbol": "ETHUSD"})
    assert average["mins"] == 5 and float(average["price"]) == 100.0


def test_private_flow(stack: Stack, accounts: Accounts) -> None:
    trader = ccxt_binance(stack, accounts(USD="10000", BTC="1"))
    maker = ccxt_binance(stack, accounts(BTC="1"))
    balance = trader.fetch_balance()
    assert (balance["USD"]["free"], balance["BTC"]["free"]) == (10000.0, 1.0)

    bid = trader.create_limit_buy_order("BTC/USD", 0.01, 20000)
    assert (bid["status"], bid["type"], bid["side"], bid["price"], bid["amount"]) == (
        "open", "limit", "buy", 20000.0, 0.01,
    )  # fmt: skip
    ask = maker.create_limit_sell_order("BTC/USD", 0.05, 30000)
    bought = trader.create_market_buy_order("BTC/USD", 0.02)
    assert (bought["status"], bought["filled"], bought["average"]) == ("closed", 0.02, 30000.0)
    assert bought["fee"] == {"cost": 0.00004, "currency": "BTC"}  # the taker's 20 bps in base
    stop = trader.create_order("BTC/USD", "limit", "sell", 0.01, 24000, {"stopLossPrice": 25000})
    assert stop["info"]["type"] == "STOP_LOSS_LIMIT" and stop["status"] == "open"
    oco = trader.private_post_orderlist_oco(
        {
            "symbol": "BTCUSD", "side": "SELL", "quantity": "0.0100",
            "aboveType": "LIMIT_MAKER", "abovePrice": "40000.00",
            "belowType": "STOP_LOSS_LIMIT", "belowStopPrice": "26000.00",
            "belowPrice": "25900.00", "belowTimeInForce": "GTC",
        }
    )  # fmt: skip
    assert oco["listStatusType"] == "EXEC_STARTED" and len(oco["orderReports"]) == 2
    asyncio.run(stack.stored("btc-usd"))

    assert trader.fetch_balance()["BTC"]["used"] == 0.02  # the stop; the list locks once
    open_ids = {order["id"] for order in trader.fetch_open_orders("BTC/USD")}
    legs = {str(report["orderId"]) for report in oco["orderReports"]}
    assert open_ids == {bid["id"], stop["id"]} | legs
    fetched = trader.fetch_order(bid["id"], "BTC/USD")
    assert (fetched["status"], fetched["remaining"]) == ("open", 0.01)
    trades = trader.fetch_my_trades("BTC/USD")
    assert [(t["order"], t["side"], t["amount"], t["price"]) for t in trades] == [
        (bought["id"], "buy", 0.02, 30000.0)
    ]
    assert (trades[0]["takerOrMaker"], trades[0]["fee"]["cost"]) == ("taker", 0.00004)
    maker_trades = maker.fetch_my_trades("BTC/USD")
    assert maker_trades[0]["takerOrMaker"] == "maker"
    assert maker_trades[0]["fee"] == {"cost": 0.6, "currency": "USD"}  # the maker's 10 bps

    canceled = trader.cancel_order(bid["id"], "BTC/USD")
    assert canceled["status"] == "canceled"
    trader.cancel_all_orders("BTC/USD")
    asyncio.run(stack.stored("btc-usd"))
    assert trader.fetch_open_orders("BTC/USD") == []
    assert [order["id"] for order in trader.fetch_closed_orders("BTC/USD")] == [bought["id"]]
    history = {order["id"]: order["status"] for order in trader.fetch_orders("BTC/USD")}
    assert history == {bid["id"]: "canceled", bought["id"]: "closed", stop["id"]: "canceled"} | {
        leg: "canceled" for leg in legs
    }
    assert trader.fetch_balance()["BTC"] == {"free": 1.01996, "used": 0.0, "total": 1.01996}
    maker.cancel_order(ask["id"], "BTC/USD")


def test_errors_are_ccxts_own(stack: Stack, accounts: Accounts) -> None:
    account = accounts(USD="100")
    trader = ccxt_binance(stack, account)
    trader.load_markets()
    with pytest.raises(ccxt.BadSymbol, match="-1121"):
        trader.public_get_depth({"symbol": "NOPEUSD"})
    with pytest.raises(ccxt.BadSymbol):
        trader.fetch_order_book("NOPE/USD")  # ccxt's own check of the loaded markets
    with pytest.raises(ccxt.InsufficientFunds, match="insufficient balance"):
        trader.create_limit_buy_order("BTC/USD", 1, 30000)
    with pytest.raises(ccxt.OrderNotFound, match="-2013"):
        trader.fetch_order("123456789", "BTC/USD")
    with pytest.raises(ccxt.InvalidOrder, match="LOT_SIZE"):
        trader.private_post_order(
            {"symbol": "BTCUSD", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
             "quantity": "0.00001", "price": "1000.00"}
        )  # fmt: skip
    forger = ccxt_binance(stack, account)
    forger.secret = "0" * len(account.secret)
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        forger.fetch_balance()
    stranger = ccxt_binance(stack, account)
    stranger.apiKey = "A" * len(account.key)
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        stranger.fetch_balance()
