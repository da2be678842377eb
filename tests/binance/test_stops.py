"""Stop orders and OCO lists through the Binance-compatible REST API, driven by python-binance
against a real stack (api, engines, dbproc, Redis, PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from binance.exceptions import BinanceAPIException

from tests.binance.conftest import Account
from tests.harness.stacks import Stack

Accounts = Callable[..., Account]


def refused(call: Callable[..., Any], **params: Any) -> BinanceAPIException:
    with pytest.raises(BinanceAPIException) as caught:
        call(**params)
    return caught.value


def balance(account: Account, asset: str) -> tuple[str, str]:
    held = account.client.get_asset_balance(asset=asset)
    return held["free"], held["locked"]


def trade_at(
    accounts: Accounts, symbol: str, price: str, quantity: str = "0.0100", bid: str | None = None
) -> None:
    """Make `price` the market's last trade price: a bid of `bid` (default `quantity`) at
    `price`, of which a market sell takes `quantity`."""
    base = symbol.removesuffix("USD")
    bidder = accounts(USD="100000")
    seller = accounts(**{base: "10"})
    resting = bidder.client.order_limit_buy(symbol=symbol, quantity=bid or quantity, price=price)
    sold = seller.client.order_market_sell(symbol=symbol, quantity=quantity)
    assert sold["status"] == "FILLED" and sold["fills"][0]["price"] == price
    assert resting["status"] == "NEW"


def test_stop_orders(stack: Stack, accounts: Accounts) -> None:
    trade_at(accounts, "BTCUSD", "30000.00")
    trader = accounts(BTC="1", USD="1000")
    client = trader.client
    stop = client.create_order(
        symbol="BTCUSD", side="SELL", type="STOP_LOSS_LIMIT", timeInForce="GTC",
        quantity="0.0100", price="28900.00", stopPrice="29000.00", newOrderRespType="RESULT",
    )  # fmt: skip
    assert (stop["type"], stop["status"], stop["stopPrice"]) == (
        "STOP_LOSS_LIMIT",
        "NEW",
        "29000.00",
    )
    assert (stop["price"], stop["origQty"], stop["orderListId"]) == ("28900.00", "0.0100", -1)
    assert balance(trader, "BTC") == ("0.99000000", "0.01000000")
    ack = client.create_order(
        symbol="BTCUSD", side="BUY", type="TAKE_PROFIT", quantity="0.0100", stopPrice="25000.00"
    )
    assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    # A stop-market buy by quantity locks its quantity at the stop price plus 5 %.
    assert balance(trader, "USD") == ("737.500000", "262.500000")
    # A stop is hidden from the book.
    assert client.get_order_book(symbol="BTCUSD")["asks"] == []

    immediate = refused(
        client.create_order,
        symbol="BTCUSD", side="SELL", type="STOP_LOSS", quantity="0.0100", stopPrice="31000.00",
    )  # fmt: skip
    assert (immediate.code, immediate.message) == (-2010, "Order would trigger immediately.")
    base = {"symbol": "BTCUSD", "side": "SELL", "quantity": "0.0100"}
    cases: list[tuple[dict[str, Any], int, str]] = [
        (
            {"type": "STOP_LOSS_LIMIT", "timeInForce": "GTC", "price": "28000.00"},
            -1102,
            "stopPrice",
        ),
        (
            {"type": "TAKE_PROFIT_LIMIT", "price": "32000.00", "stopPrice": "32000.00"},
            -1102,
            "timeInForce",
        ),
        ({"type": "STOP_LOSS", "price": "28000.00", "stopPrice": "28000.00"}, -1106, "price"),
        (
            {"type": "STOP_LOSS", "timeInForce": "GTC", "stopPrice": "28000.00"},
            -1106,
            "timeInForce",
        ),
        (
            {"type": "LIMIT", "timeInForce": "GTC", "price": "32000.00", "stopPrice": "1.00"},
            -1106,
            "stopPrice",
        ),
        ({"type": "STOP_LOSS", "stopPrice": "28000.001"}, -1013, "PRICE_FILTER"),
        ({"type": "STOP_LOSS", "stopPrice": "abc"}, -1100, "stopPrice"),
        (
            {"type": "STOP_LOSS", "stopPrice": "28000.00", "trailingDelta": "100"},
            -1106,
            "trailingDelta",
        ),
        ({"type": "STOP_LOSS", "stopPrice": "28000.00", "quantity": "50"}, -2010, "insufficient"),
    ]
    for extra, code, word in cases:
        error = refused(client.create_order, **(base | extra))
        assert (error.status_code, error.code) == (400, code), (extra, error.message)
        assert word in error.message, (extra, error.message)
    assert balance(trader, "BTC") == ("0.99000000", "0.01000000")
    assert client.create_test_order(**base, type="STOP_LOSS", stopPrice="28000.00") == {}

    asyncio.run(stack.stored("btc-usd"))
    queried = client.get_order(symbol="BTCUSD", orderId=stop["orderId"])
    assert (queried["type"], queried["stopPrice"], queried["status"]) == (
        "STOP_LOSS_LIMIT", "29000.00", "NEW",
    )  # fmt: skip
    assert (queried["isWorking"], queried["workingTime"]) == (False, -1)
    opened = {o["orderId"]: o for o in client.get_open_orders(symbol="BTCUSD")}
    assert opened[ack["orderId"]]["type"] == "TAKE_PROFIT"
    assert opened[ack["orderId"]]["stopPrice"] == "25000.00"

    # A trade at 28950 reaches the stop (last <= 29000): it becomes a limit sell at 28900,
    # which takes the rest of the 28950 bid.
    trade_at(accounts, "BTCUSD", "28950.00", quantity="0.0200", bid="0.0300")
    asyncio.run(stack.stored("btc-usd"))
    filled = client.get_order(symbol="BTCUSD", orderId=stop["orderId"])
    assert (filled["status"], filled["executedQty"], filled["isWorking"]) == (
        "FILLED", "0.0100", True,
    )  # fmt: skip
    assert filled["workingTime"] >= filled["time"]
    [fill] = client.get_my_trades(symbol="BTCUSD", orderId=stop["orderId"])
    assert (fill["price"], fill["isMaker"]) == ("28950.00", False)
    assert balance(trader, "BTC") == ("0.99000000", "0.00000000")

    canceled = client.cancel_order(symbol="BTCUSD", orderId=ack["orderId"])
    assert (canceled["status"], canceled["type"]) == ("CANCELED", "TAKE_PROFIT")
    assert balance(trader, "USD")[1] == "0.000000"


def oco_sell(client: Any, **extra: Any) -> dict[str, Any]:
    params = {
        "symbol": "ETHUSD", "side": "SELL", "quantity": "0.1000",
        "aboveType": "LIMIT_MAKER", "abovePrice": "2200.00",
        "belowType": "STOP_LOSS_LIMIT", "belowStopPrice": "1900.00", "belowPrice": "1890.00",
        "belowTimeInForce": "GTC",
    }  # fmt: skip
    answer: dict[str, Any] = client.create_oco_order(**(params | extra))
    return answer


def test_oco_lists(stack: Stack, accounts: Accounts) -> None:
    trade_at(accounts, "ETHUSD", "2000.00")
    trader = accounts(ETH="1")
    client = trader.client
    placed = oco_sell(client, listClientOrderId="my-list-1", aboveClientOrderId="take")
    number = placed["orderListId"]
    assert isinstance(number, int) and number > 0
    assert (placed["contingencyType"], placed["listStatusType"], placed["listOrderStatus"]) == (
        "OCO", "EXEC_STARTED", "EXECUTING",
    )  # fmt: skip
    assert (placed["listClientOrderId"], placed["symbol"]) == ("my-list-1", "ETHUSD")
    above, below = placed["orderReports"]
    assert [o["orderId"] for o in placed["orders"]] == [above["orderId"], below["orderId"]]
    assert (above["type"], above["price"], above["clientOrderId"]) == (
        "LIMIT_MAKER",
        "2200.00",
        "take",
    )
    assert (below["type"], below["stopPrice"], below["price"]) == (
        "STOP_LOSS_LIMIT",
        "1900.00",
        "1890.00",
    )
    assert {above["orderListId"], below["orderListId"]} == {number}
    assert (above["status"], below["status"], below["workingTime"]) == ("NEW", "NEW", -1)
    # One lock for the list: only one leg can execute.
    assert balance(trader, "ETH") == ("0.90000000", "0.10000000")
    assert client.get_order_book(symbol="ETHUSD")["asks"] == [["2200.00", "0.1000"]]

    asyncio.run(stack.stored("eth-usd"))
    by_id = client.v3_get_order_list(orderListId=number)
    assert by_id == client.v3_get_order_list(origClientOrderId="my-list-1")
    assert {k: v for k, v in placed.items() if k != "orderReports"} == by_id
    assert client.get_open_oco_orders() == [by_id]
    assert client.v3_get_all_order_list() == [by_id]

    # The limit leg fills: the stop leg expires with it, the list is done.
    buyer = accounts(USD="1000")
    bought = buyer.client.order_market_buy(symbol="ETHUSD", quantity="0.1000")
    assert bought["fills"][0]["price"] == "2200.00"
    asyncio.run(stack.stored("eth-usd"))
    done = client.v3_get_order_list(orderListId=number)
    assert (done["listStatusType"], done["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    statuses = [client.get_order(symbol="ETHUSD", orderId=o["orderId"]) for o in placed["orders"]]
    assert [(o["status"], o["orderListId"]) for o in statuses] == [
        ("FILLED", number), ("EXPIRED", number),
    ]  # fmt: skip
    assert client.get_open_oco_orders() == []
    assert balance(trader, "ETH") == ("0.90000000", "0.00000000")

    # Canceling a list cancels both legs.
    second = oco_sell(client, listClientOrderId="my-list-2")
    canceled = client.v3_delete_order_list(symbol="ETHUSD", listClientOrderId="my-list-2")
    assert (canceled["orderListId"], canceled["listStatusType"]) == (
        second["orderListId"],
        "ALL_DONE",
    )
    assert [(o["status"], o["orderListId"]) for o in canceled["orderReports"]] == [
        ("CANCELED", second["orderListId"]), ("CANCELED", second["orderListId"]),
    ]  # fmt: skip
    assert balance(trader, "ETH") == ("0.90000000", "0.00000000")
    asyncio.run(stack.stored("eth-usd"))
    assert [x["orderListId"] for x in client.v3_get_all_order_list()] == [
        number, second["orderListId"],
    ]  # fmt: skip
    later = client.v3_get_all_order_list(fromId=second["orderListId"])
    assert [x["orderListId"] for x in later] == [second["orderListId"]]
    again = refused(client.v3_delete_order_list, symbol="ETHUSD", orderListId=second["orderListId"])
    assert (again.code, again.message) == (-2011, "Unknown order sent.")


def test_oco_refusals(stack: Stack, accounts: Accounts) -> None:
    trade_at(accounts, "ETHUSD", "2000.00")
    trader = accounts(ETH="1", USD="1000")
    client = trader.client
    cases: list[tuple[dict[str, Any], int, str]] = [
        (
            {"aboveType": "STOP_LOSS", "aboveStopPrice": "2100.00", "abovePrice": None},
            -1014,
            "Unsupported order combination.",
        ),
        ({"side": "BUY"}, -1014, "Unsupported order combination."),
        ({"aboveType": "LIMIT"}, -1116, "Invalid orderType."),
        (
            {"abovePrice": "1800.00"},
            -2010,
            "The relationship of the prices for the orders is not correct.",
        ),
        (
            {"belowStopPrice": "2100.00", "belowPrice": "2090.00", "abovePrice": "2300.00"},
            -2010,
            "Order would trigger immediately.",
        ),
        (
            {"belowTimeInForce": None},
            -1102,
            "Mandatory parameter 'belowTimeInForce' was not sent, was empty/null, or malformed.",
        ),
        (
            {"belowStopPrice": None},
            -1102,
            "Mandatory parameter 'belowStopPrice' was not sent, was empty/null, or malformed.",
        ),
        (
            {"aboveStopPrice": "2300.00"},
            -1106,
            "Parameter 'aboveStopPrice' sent when not required.",
        ),
        (
            {"aboveIcebergQty": "0.0100"},
            -1106,
            "Parameter 'aboveIcebergQty' sent when not required.",
        ),
        ({"quantity": "5"}, -2010, "Account has insufficient balance for requested action."),
        ({"quantity": "0.00001"}, -1013, "Filter failure: LOT_SIZE"),
        ({"symbol": "SOLUSD"}, -2010, "Market is closed."),
    ]
    for extra, code, message in cases:
        params = {k: v for k, v in extra.items() if v is not None}
        dropped = {k for k, v in extra.items() if v is None}
        full = {
            "symbol": "ETHUSD", "side": "SELL", "quantity": "0.1000", "aboveType": "LIMIT_MAKER",
            "abovePrice": "2200.00", "belowType": "STOP_LOSS_LIMIT", "belowStopPrice": "1900.00",
            "belowPrice": "1890.00", "belowTimeInForce": "GTC",
        } | params  # fmt: skip
        with pytest.raises(BinanceAPIException) as caught:
            client.create_oco_order(**{k: v for k, v in full.items() if k not in dropped})
        assert (caught.value.code, caught.value.message) == (code, message), extra
    assert balance(trader, "ETH") == ("1.00000000", "0.00000000")
    assert client.get_open_oco_orders() == []

    # A buy list: a take-profit limit below the market, a stop-loss above it.
    bought = client.create_oco_order(
        symbol="ETHUSD", side="BUY", quantity="0.1000",
        aboveType="STOP_LOSS", aboveStopPrice="2100.00",
        belowType="TAKE_PROFIT_LIMIT", belowStopPrice="1900.00", belowPrice="1910.00",
        belowTimeInForce="GTC", listClientOrderId="buy-list",
    )  # fmt: skip
    assert [o["type"] for o in bought["orderReports"]] == ["STOP_LOSS", "TAKE_PROFIT_LIMIT"]
    # The larger of the legs' locks: 0.1 x 2100 x 1.05 for the stop-market buy.
    assert balance(trader, "USD") == ("779.500000", "220.500000")
    # A listClientOrderId used before answers with that list, placing nothing.
    again = client.create_oco_order(
        symbol="ETHUSD", side="SELL", quantity="0.1000", aboveType="LIMIT_MAKER",
        abovePrice="2200.00", belowType="STOP_LOSS", belowStopPrice="1900.00",
        listClientOrderId="buy-list",
    )  # fmt: skip
    assert again["orderListId"] == bought["orderListId"]
    assert [o["orderId"] for o in again["orders"]] == [o["orderId"] for o in bought["orders"]]
    assert balance(trader, "ETH") == ("1.00000000", "0.00000000")
    missing = refused(client.v3_get_order_list, orderListId=10**9)
    assert (missing.code, missing.message) == (-2013, "Order list does not exist.")
    unknown = refused(client.v3_delete_order_list, symbol="ETHUSD", orderListId=10**9)
    assert unknown.code == -2011
    other = accounts(USD="10")
    assert refused(other.client.v3_get_order_list, orderListId=bought["orderListId"]).code == -2013
    client.v3_delete_order_list(symbol="ETHUSD", orderListId=bought["orderListId"])
    assert balance(trader, "USD") == ("1000.000000", "0.000000")
