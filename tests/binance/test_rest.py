"""The Binance-compatible REST API driven by the python-binance client from PyPI, pointed at
a real stack (api, engines, dbproc, Redis, PostgreSQL)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from binance.exceptions import BinanceAPIException

from tests.binance.conftest import Account, binance_client
from tests.harness.stacks import Stack

Accounts = Callable[..., Account]


def refused(call: Callable[..., Any], **params: Any) -> BinanceAPIException:
    with pytest.raises(BinanceAPIException) as caught:
        call(**params)
    return caught.value


def test_public_endpoints(stack: Stack, accounts: Accounts) -> None:
    client = accounts().client
    assert client.ping() == {}
    assert abs(client.get_server_time()["serverTime"] - time.time() * 1000) < 5000
    info = client.get_exchange_info()
    symbols = {s["symbol"]: s for s in info["symbols"]}
    assert set(symbols) == {"BTCUSD", "ETHUSD", "SOLUSD", "ADAUSD"}
    btc = client.get_symbol_info("BTCUSD")
    assert btc is not None
    assert (btc["status"], btc["baseAsset"], btc["quoteAsset"]) == ("TRADING", "BTC", "USD")
    assert (btc["baseAssetPrecision"], btc["quoteAssetPrecision"]) == (8, 6)
    assert btc["defaultSelfTradePreventionMode"] == "EXPIRE_MAKER"
    assert btc["orderTypes"] == [
        "LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
        "TAKE_PROFIT_LIMIT",
    ]  # fmt: skip
    assert btc["ocoAllowed"] is True
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01"
    assert filters["LOT_SIZE"]["stepSize"] == filters["LOT_SIZE"]["minQty"] == "0.0001"
    assert filters["NOTIONAL"]["minNotional"] == filters["MIN_NOTIONAL"]["minNotional"] == "1.00"
    assert symbols["SOLUSD"]["status"] == "HALT"

    error = refused(client.get_order_book, symbol="NOPE")
    assert (error.status_code, error.code, error.message) == (400, -1121, "Invalid symbol.")
    assert refused(client.get_klines, symbol="BTCUSD", interval="3m").code == -1120
    assert refused(client.get_order_book, symbol="BTCUSD", limit=0).code == -1100
    assert refused(client.get_order_book).code == -1102
    assert refused(client.get_order_book, symbol="BTCUSD", bogus=1).code == -1104
    assert client.get_order_book(symbol="ETHUSD") == {"lastUpdateId": 0, "bids": [], "asks": []}


def test_trading_through_python_binance(stack: Stack, accounts: Accounts) -> None:
    seller = accounts(BTC="1")
    buyer = accounts(USD="10000")
    ask = seller.client.order_limit_sell(symbol="BTCUSD", quantity="0.1000", price="30000.00")
    assert ask["status"] == "NEW" and ask["type"] == "LIMIT" and ask["side"] == "SELL"
    assert ask["origQty"] == "0.1000" and ask["price"] == "30000.00" and ask["fills"] == []
    assert isinstance(ask["orderId"], int) and ask["clientOrderId"].startswith("x-")
    book = seller.client.get_order_book(symbol="BTCUSD")
    assert book["asks"] == [["30000.00", "0.1000"]] and book["bids"] == []
    assert book["lastUpdateId"] > 0

    bought = buyer.client.order_market_buy(symbol="BTCUSD", quantity="0.0400")
    assert bought["status"] == "FILLED" and bought["type"] == "MARKET"
    assert bought["executedQty"] == "0.0400" and bought["cummulativeQuoteQty"] == "1200.000000"
    assert bought["fills"] == [
        {
            "price": "30000.00",
            "qty": "0.0400",
            "commission": "0.00008000",
            "commissionAsset": "BTC",
            "tradeId": bought["fills"][0]["tradeId"],
        }
    ]
    by_quote = buyer.client.order_market_buy(symbol="BTCUSD", quoteOrderQty="300")
    assert by_quote["executedQty"] == "0.0100" and by_quote["origQuoteOrderQty"] == "300.000000"
    assert buyer.client.get_orderbook_ticker(symbol="BTCUSD") == {
        "symbol": "BTCUSD",
        "bidPrice": "0.00",
        "bidQty": "0.0000",
        "askPrice": "30000.00",
        "askQty": "0.0500",
    }
    asyncio.run(stack.stored("btc-usd"))

    order = seller.client.get_order(symbol="BTCUSD", orderId=ask["orderId"])
    assert order["status"] == "PARTIALLY_FILLED" and order["executedQty"] == "0.0500"
    same = seller.client.get_order(symbol="BTCUSD", origClientOrderId=ask["clientOrderId"])
    assert same == order
    [open_order] = seller.client.get_open_orders(symbol="BTCUSD")
    assert open_order["orderId"] == ask["orderId"]
    trades = buyer.client.get_my_trades(symbol="BTCUSD")
    assert [(t["qty"], t["isBuyer"], t["isMaker"]) for t in trades] == [
        ("0.0400", True, False),
        ("0.0100", True, False),
    ]
    assert [t["orderId"] for t in trades] == [bought["orderId"], by_quote["orderId"]]
    maker_trades = seller.client.get_my_trades(symbol="BTCUSD", orderId=ask["orderId"])
    assert [(t["isBuyer"], t["isMaker"], t["commissionAsset"]) for t in maker_trades] == [
        (False, True, "USD"),
        (False, True, "USD"),
    ]
    recent = buyer.client.get_recent_trades(symbol="BTCUSD")
    assert [t["qty"] for t in recent[-2:]] == ["0.0400", "0.0100"]
    assert all(t["isBuyerMaker"] is False for t in recent[-2:])
    assert buyer.client.get_symbol_ticker(symbol="BTCUSD") == {
        "symbol": "BTCUSD",
        "price": "30000.00",
    }
    assert buyer.client.get_avg_price(symbol="BTCUSD")["price"] == "30000.000000"
    [candle] = buyer.client.get_klines(symbol="BTCUSD", interval="1m", limit=5)[-1:]
    assert candle[1] == candle[4] == "30000.00" and candle[5] == "0.0500" and candle[8] == 2
    # dbproc keeps the 24-hour ticker in Redis (at most every second).
    deadline = time.monotonic() + 15
    while (day := buyer.client.get_ticker(symbol="BTCUSD"))["count"] < 2:
        assert time.monotonic() < deadline, day
        time.sleep(0.2)
    assert (day["symbol"], day["lastPrice"], day["volume"], day["quoteVolume"]) == (
        "BTCUSD", "30000.00", "0.0500", "1500.000000",
    )  # fmt: skip
    assert (day["weightedAvgPrice"], day["askPrice"], day["askQty"], day["lastQty"]) == (
        "30000.00", "30000.00", "0.0500", "0.0100",
    )  # fmt: skip
    assert day["lastId"] - day["firstId"] == 1 and day["lastId"] == by_quote["fills"][0]["tradeId"]

    canceled = seller.client.cancel_order(symbol="BTCUSD", orderId=ask["orderId"])
    assert canceled["status"] == "CANCELED" and canceled["executedQty"] == "0.0500"
    assert canceled["origClientOrderId"] == ask["clientOrderId"]
    balances = {b["asset"]: b for b in seller.client.get_account()["balances"]}
    assert balances["BTC"] == {"asset": "BTC", "free": "0.95000000", "locked": "0.00000000"}
    assert balances["USD"]["free"] == "1498.500000"  # 1500 less the 0.1 % maker fee
    assert seller.client.get_asset_balance(asset="USD")["locked"] == "0.000000"
    asyncio.run(stack.stored("btc-usd"))
    history = seller.client.get_all_orders(symbol="BTCUSD")
    assert [(o["orderId"], o["status"]) for o in history] == [(ask["orderId"], "CANCELED")]
    assert seller.client.get_open_orders() == []


def test_order_kinds_and_refusals(stack: Stack, accounts: Accounts) -> None:
    trader = accounts(USD="1000", ETH="1")
    client = trader.client
    maker = client.create_order(
        symbol="ETHUSD",
        side="SELL",
        type="LIMIT_MAKER",
        quantity="0.0100",
        price="2000.00",
        newOrderRespType="RESULT",
    )
    assert maker["type"] == "LIMIT_MAKER" and maker["timeInForce"] == "GTC"
    crossing = refused(
        client.create_order,
        symbol="ETHUSD", side="BUY", type="LIMIT_MAKER", quantity="0.0100", price="2000.00",
    )  # fmt: skip
    assert (crossing.code, crossing.message) == (-2010, "Order would immediately match and take.")
    # IOC against its own resting order: EXPIRE_MAKER (the default) expires the maker.
    ioc = client.order_limit_buy(
        symbol="ETHUSD", quantity="0.0100", price="2000.00", timeInForce="IOC"
    )
    assert ioc["status"] == "EXPIRED" and ioc["executedQty"] == "0.0000"
    fok = client.order_limit_buy(
        symbol="ETHUSD", quantity="0.0100", price="1500.00", timeInForce="FOK"
    )
    assert (fok["status"], fok["executedQty"], fok["fills"]) == ("EXPIRED", "0.0000", [])
    ack = client.order_limit_buy(
        symbol="ETHUSD", quantity="0.0100", price="1000.00", newOrderRespType="ACK"
    )
    assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    assert (
        client.create_test_order(
            symbol="ETHUSD", side="BUY", type="LIMIT", timeInForce="GTC", quantity="1", price="10"
        )
        == {}
    )

    cases: list[tuple[dict[str, Any], int]] = [
        ({"price": "1000.001", "quantity": "0.0100"}, -1013),
        ({"price": "1000.00", "quantity": "0.00001"}, -1013),
        ({"price": "10.00", "quantity": "0.0100"}, -1013),  # below minNotional
        ({"price": "1000.00", "quantity": "5.0000"}, -2010),  # insufficient balance
        ({"price": "abc", "quantity": "1"}, -1100),
        ({"price": "1000.00", "quantity": "0.0100", "timeInForce": "GTD"}, -1115),
        ({"price": "1000.00", "quantity": "0.0100", "type": "STOP"}, -1116),
        ({"price": "1000.00", "quantity": "0.0100", "type": "STOP_LOSS_LIMIT"}, -1102),
        ({"price": "1000.00", "quantity": "0.0100", "side": "HOLD"}, -1117),
        ({"quantity": "0.0100"}, -1102),
    ]
    before = client.get_account()["balances"]
    for extra, code in cases:
        order = {"symbol": "ETHUSD", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
        error = refused(client.create_order, **(order | extra))
        assert (error.status_code, error.code) == (400, code), (extra, error.message)
    assert client.get_account()["balances"] == before
    halted = refused(client.order_limit_buy, symbol="SOLUSD", quantity="1", price="10.00")
    assert halted.code == -2010
    unknown = refused(client.cancel_order, symbol="ETHUSD", orderId=999_999_999)
    assert (unknown.code, unknown.message) == (-2011, "Unknown order sent.")
    missing = refused(client.get_order, symbol="ETHUSD", orderId=999_999_999)
    assert (missing.code, missing.message) == (-2013, "Order does not exist.")

    asyncio.run(stack.stored("eth-usd"))
    canceled = client.cancel_all_open_orders(symbol="ETHUSD")
    assert sorted(o["orderId"] for o in canceled) == sorted([ack["orderId"]])
    assert all(o["status"] == "CANCELED" for o in canceled)
    asyncio.run(stack.stored("eth-usd"))
    assert refused(client.cancel_all_open_orders, symbol="ETHUSD").code == -2011
    usd = {b["asset"]: b for b in client.get_account()["balances"]}["USD"]
    assert usd["locked"] == "0.000000"


def test_signed_requests_are_checked(stack: Stack, accounts: Accounts) -> None:
    trader = accounts(USD="100")
    forged = binance_client(stack.api.url, trader.key, "0" * 64)
    error = refused(forged.get_account)
    assert (error.status_code, error.code) == (400, -1022)
    stale = binance_client(stack.api.url, trader.key, trader.secret)
    stale.timestamp_offset = -120_000
    error = refused(stale.get_account)
    assert (error.code, error.message) == (
        -1021,
        "Timestamp for this request is outside of the recvWindow.",
    )
    stale.timestamp_offset = 10_000  # ahead of the server's clock
    assert refused(stale.get_account).code == -1021
    unknown = binance_client(stack.api.url, "f" * 32, trader.secret)
    assert (refused(unknown.get_account).status_code, refused(unknown.get_account).code) == (
        401,
        -2015,
    )
    reader = accounts(scopes=("read",), USD="100")
    assert reader.client.get_account()["canTrade"] is False
    error = refused(reader.client.order_limit_buy, symbol="BTCUSD", quantity="1", price="10")
    assert (error.status_code, error.code) == (401, -2015)
    assert trader.client.get_account()["balances"] == [
        {"asset": "USD", "free": "100.000000", "locked": "0.000000"}
    ]


def test_malformed_requests_get_binance_errors(stack: Stack, accounts: Accounts) -> None:
    """Raw requests: never a 500, always `{"code", "msg"}`."""
    with httpx.Client(base_url=stack.api.url, timeout=10) as http:
        for path, params in [
            ("/api/v3/depth", {"symbol": "BTCUSD", "limit": "x"}),
            ("/api/v3/depth", {"symbol": "btc-usd"}),
            ("/api/v3/klines", {"symbol": "BTCUSD"}),
            ("/api/v3/klines", {"symbol": "BTCUSD", "interval": "1m", "startTime": "9" * 30}),
            ("/api/v3/ticker/24hr", {"symbols": "[not json"}),
            ("/api/v3/ticker/price", {"symbols": '["BTCUSD","NOPE"]'}),
            ("/api/v3/exchangeInfo", {"bogus": "1"}),
            ("/api/v3/account", {}),
            ("/api/v3/account", {"timestamp": "abc", "signature": "00"}),
            ("/api/v3/nothing", {}),
        ]:
            answer = http.get(path, params=params, headers={"X-MBX-APIKEY": "k" * 10})
            assert 400 <= answer.status_code < 500, (path, params, answer.text)
            body = answer.json()
            assert set(body) == {"code", "msg"} and body["code"] < 0, (path, body)
        tickers = http.get("/api/v3/ticker/24hr", params={"symbols": '["BTCUSD","ETHUSD"]'})
        assert [t["symbol"] for t in tickers.json()] == ["BTCUSD", "ETHUSD"]
        assert http.get("/api/v1/nothing").json()["code"] == "not_found"  # native shape kept


def test_signature_covers_the_query_string_then_the_body(stack: Stack, accounts: Accounts) -> None:
    """Parameters split between the query string and a form body, signed as Binance says:
    HMAC-SHA256 of the query string concatenated with the body."""
    trader = accounts(USD="1000")
    query = "symbol=BTCUSD&side=BUY&type=LIMIT&timeInForce=GTC"
    body = (
        f"quantity=0.0100&price=100.00&newOrderRespType=RESULT&timestamp={int(time.time() * 1000)}"
    )

    def sign(payload: str) -> str:
        return hmac.new(trader.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()

    headers = {"X-MBX-APIKEY": trader.key, "Content-Type": "application/x-www-form-urlencoded"}
    with httpx.Client(base_url=stack.api.url, timeout=10) as http:
        wrong_order = http.post(
            f"/api/v3/order?{query}", content=f"{body}&signature={sign(body + query)}",
            headers=headers,
        )  # fmt: skip
        assert wrong_order.json()["code"] == -1022, wrong_order.text
        signed = f"{body}&signature={sign(query + body)}"
        placed = http.post(f"/api/v3/order?{query}", content=signed, headers=headers)
        assert placed.status_code == 200, placed.text
        assert (placed.json()["status"], placed.json()["price"]) == ("NEW", "100.00")
        replayed = http.post(f"/api/v3/order?{query}", content=signed, headers=headers)
        assert replayed.json() == {
            "code": -1022,
            "msg": "Signature for this request was already used.",
        }
    assert trader.client.get_account()["balances"] == [
        {"asset": "USD", "free": "999.000000", "locked": "1.000000"}
    ]
