"""ccxt.pro's `binance` class from PyPI against the ws service's Binance streams and the api,
only its URLs changed: the order book, trades and ticker, and the user's orders, trades and
balance as they change, with real engines behind."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import ccxt
import ccxt.pro
import pytest

from tests.binance.conftest import Account
from tests.binance.test_ccxt import local_urls
from tests.harness.stacks import Stack
from tests.harness.ws import WsProcess

Accounts = Callable[..., Account]


def ccxt_pro_binance(
    stack: Stack, ws_server: WsProcess, account: Account | None = None
) -> ccxt.pro.binance:
    """ccxt.pro's binance with its REST URLs on the api and its stream URLs on ws: the
    market and user-data streams at `/ws`, Binance's WebSocket API at `/ws-api/v3`."""
    keys = {"apiKey": account.key, "secret": account.secret} if account else {}
    exchange = ccxt.pro.binance({**keys, "timeout": 10_000})
    streams = f"ws://127.0.0.1:{ws_server.port}"
    rest = {name: url for name, url in exchange.urls["api"].items() if name != "ws"}
    exchange.urls["api"] = local_urls(rest, stack.api.url) | {
        "ws": {
            **{market: f"{streams}/ws" for market in ("spot", "margin", "linear", "inverse")},
            "ws-api": {"spot": f"{streams}/ws-api/v3"},
        }
    }
    return exchange


async def within(seconds: float, awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, seconds)


def test_public_streams(stack: Stack, ws_server: WsProcess, accounts: Accounts) -> None:
    """ccxt.pro's book is the REST snapshot plus the diff stream from the first diff on (a
    quiet book sends none: the first order after subscribing starts it)."""
    seller, buyer = accounts(BTC="1"), accounts(USD="10000")

    async def run() -> None:
        exchange = ccxt_pro_binance(stack, ws_server)
        try:
            book_task = asyncio.ensure_future(exchange.watch_order_book("BTC/USD"))
            trades_task = asyncio.ensure_future(exchange.watch_trades("BTC/USD"))
            ticker_task = asyncio.ensure_future(exchange.watch_ticker("BTC/USD"))
            await asyncio.sleep(0.5)
            await asyncio.to_thread(
                seller.client.order_limit_sell, symbol="BTCUSD", quantity="0.0500",
                price="31000.00",
            )  # fmt: skip
            book = await within(10, book_task)
            assert book["asks"][0] == [31000.0, 0.05] and book["symbol"] == "BTC/USD"
            book_task = asyncio.ensure_future(exchange.watch_order_book("BTC/USD"))
            await asyncio.to_thread(
                buyer.client.order_market_buy, symbol="BTCUSD", quantity="0.0100"
            )
            trades = await within(10, trades_task)
            assert [(t["side"], t["price"], t["amount"]) for t in trades] == [
                ("buy", 31000.0, 0.01)
            ]
            book = await within(10, book_task)
            assert book["asks"][0] == [31000.0, 0.04]
            ticker = await within(20, ticker_task)  # dbproc's ticker, polled by ws
            assert (ticker["symbol"], ticker["last"]) == ("BTC/USD", 31000.0)
        finally:
            await exchange.close()

    asyncio.run(run())


async def until(seconds: float, watch: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
    """Watch again until `done` holds for what the watch gives (each message resolves it)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await within(max(0.1, deadline - asyncio.get_running_loop().time()), watch())
        if done(value):
            return value


def test_user_data_streams(stack: Stack, ws_server: WsProcess, accounts: Accounts) -> None:
    """`watch_orders`, `watch_my_trades` and `watch_balance` through Binance's WebSocket API
    (`userDataStream.subscribe.signature`, its signature checked by the api): an order placed,
    then filled, the trade, and the balances it locked and then moved."""
    trader, seller = accounts(USD="1000"), accounts(BTC="1")

    async def run() -> None:
        exchange = ccxt_pro_binance(stack, ws_server, trader)
        try:
            await exchange.load_markets()
            orders = asyncio.ensure_future(exchange.watch_orders("BTC/USD"))
            trades = asyncio.ensure_future(exchange.watch_my_trades("BTC/USD"))
            balance = asyncio.ensure_future(exchange.watch_balance())
            await asyncio.sleep(1.0)  # subscribed before the order
            placed = await exchange.create_limit_buy_order("BTC/USD", 0.01, 30500)
            [accepted] = await within(10, orders)
            assert (accepted["id"], accepted["status"], accepted["filled"]) == (
                placed["id"], "open", 0.0,
            )  # fmt: skip
            locked = await within(10, balance)
            assert (locked["USD"]["free"], locked["USD"]["used"]) == (695.0, 305.0)

            orders = asyncio.ensure_future(exchange.watch_orders("BTC/USD"))
            balance = asyncio.ensure_future(exchange.watch_balance())
            await asyncio.to_thread(
                seller.client.order_market_sell, symbol="BTCUSD", quantity="0.0100"
            )
            [trade] = await within(10, trades)
            assert (trade["order"], trade["side"], trade["price"], trade["amount"]) == (
                placed["id"], "buy", 30500.0, 0.01,
            )  # fmt: skip
            filled = (await within(10, orders))[-1]
            assert (filled["id"], filled["status"], filled["filled"]) == (
                placed["id"],
                "closed",
                0.01,
            )
            moved = await within(10, balance)
            if "BTC" not in moved or moved["USD"]["used"]:  # the fill read back in two parts
                moved = await until(
                    10,
                    exchange.watch_balance,
                    lambda seen: "BTC" in seen and seen["USD"]["used"] == 0,
                )
            assert moved["USD"]["free"] == 695.0 and 0 < moved["BTC"]["free"] <= 0.01
        finally:
            await exchange.close()

    asyncio.run(run())


def test_user_data_refused(stack: Stack, ws_server: WsProcess, accounts: Accounts) -> None:
    """A wrong secret: the api refuses the signature, ccxt raises its AuthenticationError."""
    trader = accounts()

    async def run() -> None:
        exchange = ccxt_pro_binance(stack, ws_server, trader)
        try:
            await exchange.load_markets()
            exchange.secret = "0" * 64
            with pytest.raises(Exception) as refused:
                await within(10, exchange.watch_orders("BTC/USD"))
            # ccxt maps the error frame to its AuthenticationError, then (ccxt's own slip) hits
            # a KeyError cleaning up after it: the first is the answer's.
            error: BaseException | None = refused.value
            while error is not None and not isinstance(error, ccxt.AuthenticationError):
                error = error.__context__
            assert error is not None and '"code":-1022' in str(error)
        finally:
            await exchange.close()

    asyncio.run(run())
