"""Binance's official Python SDK (`binance-sdk-spot` from PyPI) against the Binance-compatible
api and ws, only its URLs changed: its REST client (`base_path`) for public data and a
private flow, its errors, and its WebSocket streams client (`stream_url`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from binance_common.configuration import (
    ConfigurationRestAPI,
    ConfigurationWebSocketAPI,
    ConfigurationWebSocketStreams,
)
from binance_common.errors import BadRequestError, NotFoundError, UnauthorizedError
from binance_sdk_spot.rest_api.models import (
    NewOrderSideEnum,
    NewOrderTimeInForceEnum,
    NewOrderTypeEnum,
    OrderListOcoAboveTypeEnum,
    OrderListOcoBelowTimeInForceEnum,
    OrderListOcoBelowTypeEnum,
    OrderListOcoSideEnum,
)
from binance_sdk_spot.spot import Spot

from tests.binance.conftest import Account
from tests.harness.stacks import Stack
from tests.harness.ws import WsProcess

Accounts = Callable[..., Account]
BUY, SELL = NewOrderSideEnum.BUY, NewOrderSideEnum.SELL
GTC = NewOrderTimeInForceEnum.GTC


def sdk(stack: Stack, account: Account | None = None, stream_url: str | None = None) -> Spot:
    """The SDK's Spot client: REST at `base_path` (no retries: a refusal is final), the
    streams at `stream_url`."""
    rest = ConfigurationRestAPI(
        api_key=account.key if account else None,
        api_secret=account.secret if account else None,
        base_path=stack.api.url,
        timeout=10_000,
        retries=0,
    )
    streams = ConfigurationWebSocketStreams(stream_url=stream_url)
    return Spot(config_rest_api=rest, config_ws_streams=streams)


def data(response: Any) -> Any:
    """A response's JSON as sent (the SDK's models keep Binance's field names as aliases)."""
    value = response.data()
    return [v.to_dict() for v in value] if isinstance(value, list) else value.to_dict()


def test_public_data(stack: Stack) -> None:
    api = sdk(stack).rest_api
    assert abs(data(api.time())["serverTime"] - time.time() * 1000) < 5000
    info = data(api.exchange_info(symbol="BTCUSD"))
    [btc] = info["symbols"]
    assert (btc["symbol"], btc["baseAsset"], btc["quoteAsset"]) == ("BTCUSD", "BTC", "USD")
    assert data(api.depth(symbol="ETHUSD")) == {"lastUpdateId": 0, "bids": [], "asks": []}
    assert data(api.agg_trades(symbol="ETHUSD")) == []
    assert data(api.avg_price(symbol="ETHUSD"))["mins"] == 5
    with pytest.raises(BadRequestError) as unknown:
        api.depth(symbol="NOPEUSD")
    assert (unknown.value.status_code, unknown.value.error_message) == (-1121, "Invalid symbol.")
    with pytest.raises(NotFoundError) as unserved:
        api.historical_trades(symbol="BTCUSD")
    assert unserved.value.status_code == -1020


def test_private_flow_and_errors(stack: Stack, accounts: Accounts) -> None:
    trader_account = accounts(USD="10000", BTC="1")
    trader = sdk(stack, trader_account).rest_api
    maker = sdk(stack, accounts(BTC="1")).rest_api
    balances = {b["asset"]: b["free"] for b in data(trader.get_account())["balances"]}
    assert (balances["USD"], balances["BTC"]) == ("10000.000000", "1.00000000")

    bid = data(trader.new_order("BTCUSD", BUY, NewOrderTypeEnum.LIMIT, GTC, 0.01, price=20000))
    assert (bid["status"], bid["price"], bid["origQty"]) == ("NEW", "20000.00", "0.0100")
    data(maker.new_order("BTCUSD", SELL, NewOrderTypeEnum.LIMIT, GTC, 0.05, price=32000))
    bought = data(trader.new_order("BTCUSD", BUY, NewOrderTypeEnum.MARKET, quantity=0.02))
    assert (bought["status"], bought["executedQty"]) == ("FILLED", "0.0200")
    stop = data(
        trader.new_order(
            "BTCUSD", SELL, NewOrderTypeEnum.STOP_LOSS_LIMIT, GTC, 0.01, price=24000,
            stop_price=25000,
        )
    )  # fmt: skip
    oco = data(
        trader.order_list_oco(
            "BTCUSD", OrderListOcoSideEnum.SELL, 0.01, OrderListOcoAboveTypeEnum.LIMIT_MAKER,
            OrderListOcoBelowTypeEnum.STOP_LOSS_LIMIT, above_price=40000,
            below_price=25900, below_stop_price=26000,
            below_time_in_force=OrderListOcoBelowTimeInForceEnum.GTC,
        )
    )  # fmt: skip
    assert oco["listStatusType"] == "EXEC_STARTED"
    asyncio.run(stack.stored("btc-usd"))

    open_ids = {o["orderId"] for o in data(trader.get_open_orders(symbol="BTCUSD"))}
    legs = {o["orderId"] for o in oco["orders"]}
    assert open_ids == {bid["orderId"], stop["orderId"]} | legs
    assert data(trader.get_order("BTCUSD", order_id=bid["orderId"]))["status"] == "NEW"
    [trade] = data(trader.my_trades("BTCUSD"))
    assert (trade["orderId"], trade["qty"], trade["commission"]) == (
        bought["orderId"], "0.0200", "0.00004000",
    )  # fmt: skip
    commission = data(trader.account_commission("BTCUSD"))["standardCommission"]
    assert (commission["maker"], commission["taker"]) == ("0.00100000", "0.00200000")

    canceled = data(trader.delete_order("BTCUSD", order_id=bid["orderId"]))
    assert canceled["status"] == "CANCELED"
    trader.delete_open_orders("BTCUSD")
    asyncio.run(stack.stored("btc-usd"))
    assert data(trader.get_open_orders(symbol="BTCUSD")) == []

    with pytest.raises(BadRequestError) as poor:
        trader.new_order("BTCUSD", BUY, NewOrderTypeEnum.LIMIT, GTC, 1, price=30000)
    assert poor.value.status_code == -2010
    with pytest.raises(BadRequestError) as unknown:
        trader.new_order("NOPEUSD", BUY, NewOrderTypeEnum.LIMIT, GTC, 1, price=30000)
    assert unknown.value.status_code == -1121
    forged = Account(trader_account.user_id, trader_account.key, "0" * 64, trader_account.client)
    with pytest.raises(BadRequestError) as bad_signature:
        sdk(stack, forged).rest_api.get_account()
    assert bad_signature.value.status_code == -1022
    stranger = Account("", "A" * 64, trader_account.secret, trader_account.client)
    with pytest.raises(UnauthorizedError) as unknown_key:
        sdk(stack, stranger).rest_api.get_account()
    assert unknown_key.value.status_code == -2015


def test_websocket_streams(stack: Stack, ws_server: WsProcess, accounts: Accounts) -> None:
    """The SDK's streams client: combined streams at `<stream_url>/stream`, SUBSCRIBE there."""
    seller, buyer = accounts(BTC="1"), accounts(USD="10000")

    async def run() -> list[Any]:
        client = sdk(stack, stream_url=f"ws://127.0.0.1:{ws_server.port}")
        connection = await client.websocket_streams.create_connection()  # type: ignore[no-untyped-call]
        received: list[Any] = []
        try:
            for subscribe in (connection.agg_trade, connection.trade):
                stream = await subscribe(symbol="btcusd")
                stream.on("message", received.append)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(
                seller.client.order_limit_sell, symbol="BTCUSD", quantity="0.0100",
                price="33000.00",
            )  # fmt: skip
            await asyncio.to_thread(
                buyer.client.order_market_buy, symbol="BTCUSD", quantity="0.0100"
            )
            deadline = time.monotonic() + 10
            while len(received) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await connection.close_connection(close_session=True)
        return received

    received = asyncio.run(run())
    assert len(received) >= 2
    events = {m.e: m for m in received}
    assert set(events) == {"aggTrade", "trade"}
    assert (events["aggTrade"].s, events["aggTrade"].a) == ("BTCUSD", events["trade"].t)


def websocket_api(stack: Stack, ws_server: WsProcess, account: Account, secret: str = "") -> Spot:
    """The SDK's WebSocket API client (`stream_url` its `/ws-api/v3`), HMAC-signing."""
    config = ConfigurationWebSocketAPI(
        api_key=account.key,
        api_secret=secret or account.secret,
        stream_url=f"ws://127.0.0.1:{ws_server.port}/ws-api/v3",
    )
    return Spot(config_ws_api=config)


def test_websocket_api_user_data(stack: Stack, ws_server: WsProcess, accounts: Accounts) -> None:
    """The SDK's user-data subscription (`userDataStream.subscribe.signature`): the order's
    `executionReport` and the balance's `outboundAccountPosition`, as its models read them;
    a wrong secret is refused with Binance's -1022."""
    trader = accounts(USD="1000")

    async def run() -> list[Any]:
        connection = await websocket_api(stack, ws_server, trader).websocket_api.create_connection()  # type: ignore[no-untyped-call]
        received: list[Any] = []
        try:
            subscription = await connection.user_data_stream_subscribe_signature()
            assert subscription.response.data().result.subscription_id == 0
            subscription.stream.on("message", received.append)
            await asyncio.to_thread(
                trader.client.order_limit_buy, symbol="BTCUSD", quantity="0.0100",
                price="20000.00",
            )  # fmt: skip
            deadline = time.monotonic() + 10
            while len(received) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await connection.close_connection(close_session=True)
        return received

    received = asyncio.run(run())
    events = [event.actual_instance for event in received[:2]]
    assert [type(event).__name__ for event in events] == [
        "ExecutionReport", "OutboundAccountPosition",
    ]  # fmt: skip
    report, position = (event.to_dict() for event in events)
    assert {k: report[k] for k in ("s", "S", "o", "x", "X")} == {
        "s": "BTCUSD", "S": "BUY", "o": "LIMIT", "x": "NEW", "X": "NEW",
    }  # fmt: skip
    assert [(b["a"], float(b["f"]), float(b["l"])) for b in position["B"]] == [
        ("USD", 800.0, 200.0)
    ]

    async def forged() -> None:
        client = websocket_api(stack, ws_server, trader, secret="0" * 64)
        connection = await client.websocket_api.create_connection()  # type: ignore[no-untyped-call]
        try:
            with pytest.raises(ValueError, match="-1022"):
                await connection.user_data_stream_subscribe_signature()
        finally:
            await connection.close_connection(close_session=True)

    asyncio.run(forged())
