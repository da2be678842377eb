"""Binance-format market streams on the ws service, next to the REST API and real engines:
the diff depth stream maintains a local book exactly as Binance documents it, and the
other streams, the methods and the errors take Binance's shapes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from binance.async_client import AsyncClient
from binance.exceptions import BinanceAPIException
from binance.ws.depthcache import DepthCacheManager
from binance.ws.streams import BinanceSocketManager
from websockets.asyncio.client import ClientConnection, connect

from tests.binance.conftest import Account
from tests.harness.stacks import Stack
from tests.harness.ws import WsProcess

Accounts = Callable[..., Account]
Book = dict[str, dict[str, str]]


class Messages:
    """Everything a connection receives, read in the background."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.received: list[Any] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.connection:
                self.received.append(orjson.loads(raw))

    async def until(self, condition: Callable[[list[Any]], bool], timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self.received):
            if time.monotonic() > deadline:
                raise AssertionError(f"not received in {timeout} s: {self.received[-5:]}")
            await asyncio.sleep(0.02)

    async def request(self, message: dict[str, Any] | str) -> Any:
        """Send a request and wait for the answer that carries its id."""
        count = len(self.received)
        await self.connection.send(message if isinstance(message, str) else orjson.dumps(message))
        request_id = None if isinstance(message, str) else message.get("id")

        def answered(received: list[Any]) -> bool:
            return any(
                isinstance(m, dict) and ("result" in m or "code" in m) and m.get("id") == request_id
                for m in received[count:]
            )

        await self.until(answered)
        return next(
            m
            for m in self.received[count:]
            if isinstance(m, dict) and ("result" in m or "code" in m) and m.get("id") == request_id
        )


@pytest_asyncio.fixture
async def open_stream(ws_server: WsProcess) -> AsyncIterator[Callable[..., Any]]:
    opened: list[tuple[ClientConnection, Messages]] = []

    async def open_(path: str) -> Messages:
        connection = await connect(f"ws://127.0.0.1:{ws_server.port}{path}", open_timeout=10)
        messages = Messages(connection)
        opened.append((connection, messages))
        return messages

    try:
        yield open_
    finally:
        for connection, messages in opened:
            await connection.close()
            messages.task.cancel()


def _levels(pairs: list[list[str]]) -> dict[str, str]:
    return {price: qty for price, qty in pairs}


async def test_diff_depth_stream_maintains_the_engine_book(
    stack: Stack, accounts: Accounts, open_stream: Callable[..., Any]
) -> None:
    maker = accounts(BTC="10", USD="100000")
    taker = accounts(BTC="10", USD="100000")
    stream = await open_stream("/ws/btcusd@depth")
    await asyncio.sleep(0.3)  # the subscription is in place before the first order

    def place(account: Account, side: str, price: str, qty: str) -> dict[str, Any]:
        order: dict[str, Any] = account.client.create_order(
            symbol="BTCUSD", side=side, type="LIMIT", timeInForce="GTC", quantity=qty, price=price
        )
        return order

    for n in range(8):
        await asyncio.to_thread(place, maker, "BUY", f"{29000 + 10 * n}.00", "0.0100")
        await asyncio.to_thread(place, maker, "SELL", f"{31000 + 10 * n}.00", "0.0200")
    # The snapshot is taken while diffs keep coming, as a real client's would be.
    snapshot, _ = await asyncio.gather(
        asyncio.to_thread(maker.client.get_order_book, symbol="BTCUSD", limit=5000),
        asyncio.to_thread(place, taker, "BUY", "31015.00", "0.0300"),
    )
    resting = await asyncio.to_thread(place, maker, "SELL", "30500.00", "0.0500")
    await asyncio.to_thread(place, taker, "SELL", "29035.00", "0.0250")
    await asyncio.to_thread(maker.client.cancel_order, symbol="BTCUSD", orderId=resting["orderId"])
    await asyncio.to_thread(taker.client.order_market_buy, symbol="BTCUSD", quantity="0.0150")
    final = await asyncio.to_thread(maker.client.get_order_book, symbol="BTCUSD", limit=5000)
    await stream.until(lambda got: bool(got) and got[-1]["u"] >= final["lastUpdateId"])

    # Binance's procedure: drop what the snapshot covers, check the first event straddles
    # it and every next one continues the previous, then apply absolute quantities.
    bids, asks = _levels(snapshot["bids"]), _levels(snapshot["asks"])
    last = snapshot["lastUpdateId"]
    events = [e for e in stream.received if e["u"] > last]
    assert all(e["e"] == "depthUpdate" and e["s"] == "BTCUSD" for e in stream.received)
    assert events[0]["U"] <= last + 1 <= events[0]["u"]
    for event in events:
        assert event["U"] == last + 1 or event is events[0]
        for side, levels in ((bids, event["b"]), (asks, event["a"])):
            for price, qty in levels:
                if float(qty) == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        last = event["u"]
    assert last == final["lastUpdateId"]
    assert bids == _levels(final["bids"]) and asks == _levels(final["asks"])
    assert len(bids) == 6 and len(asks) == 6  # two bids and two asks were taken


async def test_streams_methods_and_errors(
    stack: Stack, accounts: Accounts, open_stream: Callable[..., Any]
) -> None:
    seller = accounts(ETH="1")
    buyer = accounts(USD="10000")
    combined = await open_stream("/stream?streams=ethusd@trade/ethusd@bookTicker/ethusd@depth5")
    raw = await open_stream("/ws/ethusd@kline_1m")
    # Subscribing starts with the current state of the snapshot-like streams.
    await combined.until(lambda got: len(got) >= 2)
    assert {m["stream"] for m in combined.received[:2]} == {"ethusd@bookTicker", "ethusd@depth5"}
    assert await combined.request({"method": "LIST_SUBSCRIPTIONS", "id": 1}) == {
        "result": ["ethusd@bookTicker", "ethusd@depth5", "ethusd@trade"],
        "id": 1,
    }
    assert await raw.request({"method": "SUBSCRIBE", "params": ["ethusd@ticker"], "id": "a1"}) == {
        "result": None,
        "id": "a1",
    }
    assert await raw.request({"method": "GET_PROPERTY", "params": ["combined"], "id": 2}) == {
        "result": False,
        "id": 2,
    }

    await asyncio.to_thread(
        seller.client.order_limit_sell, symbol="ETHUSD", quantity="0.5000", price="2000.00"
    )
    bought = await asyncio.to_thread(
        buyer.client.order_market_buy, symbol="ETHUSD", quantity="0.2000"
    )
    trade_id = bought["fills"][0]["tradeId"]

    def stream_data(name: str) -> Callable[[list[Any]], bool]:
        return lambda got: any(m.get("stream") == name for m in got)

    await combined.until(stream_data("ethusd@trade"))
    [trade] = [m["data"] for m in combined.received if m.get("stream") == "ethusd@trade"]
    assert trade | {"E": 0, "T": 0} == {
        "e": "trade", "E": 0, "s": "ETHUSD", "t": trade_id, "p": "2000.00", "q": "0.2000",
        "T": 0, "m": False, "M": True,
    }  # fmt: skip
    await combined.until(
        lambda got: any(
            m.get("stream") == "ethusd@bookTicker" and m["data"]["A"] == "0.3000" for m in got
        )
    )
    depth5 = [m["data"] for m in combined.received if m.get("stream") == "ethusd@depth5"]
    assert depth5[-1]["asks"] == [["2000.00", "0.3000"]] and depth5[-1]["bids"] == []

    await raw.until(lambda got: any(m.get("e") == "kline" for m in got))
    kline = [m for m in raw.received if m.get("e") == "kline"][-1]["k"]
    assert (kline["i"], kline["o"], kline["c"], kline["v"], kline["n"], kline["x"]) == (
        "1m", "2000.00", "2000.00", "0.2000", 1, False,
    )  # fmt: skip
    # dbproc stores the ticker, ws polls it: the ticker stream follows within seconds.
    await raw.until(lambda got: any(m.get("e") == "24hrTicker" for m in got), timeout=20)
    ticker = [m for m in raw.received if m.get("e") == "24hrTicker"][-1]
    assert (ticker["s"], ticker["c"], ticker["v"], ticker["a"]) == (
        "ETHUSD", "2000.00", "0.2000", "2000.00",
    )  # fmt: skip

    assert await combined.request(
        {"method": "UNSUBSCRIBE", "params": ["ethusd@depth5"], "id": 3}
    ) == {"result": None, "id": 3}
    assert (await combined.request({"method": "LIST_SUBSCRIPTIONS", "id": 4}))["result"] == [
        "ethusd@bookTicker",
        "ethusd@trade",
    ]
    unknown = await combined.request({"method": "SUBSCRIBE", "params": ["nope@trade"], "id": 5})
    assert unknown["code"] == 2 and unknown["id"] == 5
    bad_stream = await combined.request({"method": "SUBSCRIBE", "params": ["ethusd@x"], "id": 6})
    assert bad_stream["code"] == 2
    no_interval = await combined.request(
        {"method": "SUBSCRIBE", "params": ["ethusd@kline_3m"], "id": 7}
    )
    assert no_interval["code"] == 2
    wrong = await combined.request({"method": "FETCH", "id": 8})
    assert wrong["code"] == 2 and "unknown variant" in wrong["msg"]
    broken = await combined.request("{not json")
    assert broken["code"] == 3
    assert (await combined.request({"method": "GET_PROPERTY", "params": ["x"], "id": 9}))[
        "code"
    ] == 0
    # Switched to raw framing, the same subscriptions send bare payloads.
    switched = {"method": "SET_PROPERTY", "params": ["combined", False], "id": 10}
    assert await combined.request(switched) == {"result": None, "id": 10}
    count = len(combined.received)
    await asyncio.to_thread(buyer.client.order_market_buy, symbol="ETHUSD", quantity="0.1000")
    await combined.until(lambda got: any(m.get("e") == "trade" for m in got[count:]))


async def test_python_binance_depth_cache_follows_the_engine_book(
    stack: Stack, accounts: Accounts, ws_server: WsProcess
) -> None:
    """python-binance's own DepthCacheManager (snapshot over REST, diffs over the stream,
    Binance's procedure) pointed at our api and ws ends with the engine's book. (Leaving it
    takes ~10 s: the client's read loop notices its stop flag only at its 10 s timeout.)"""
    maker = accounts(BTC="10", USD="100000")
    client = AsyncClient(maker.key, maker.secret)
    client.API_URL = f"{stack.api.url}/api"
    sockets = BinanceSocketManager(client)
    sockets.STREAM_URL = f"ws://127.0.0.1:{ws_server.port}/"
    try:
        async with DepthCacheManager(
            client, "BTCUSD", bm=sockets, limit=5000, conv_type=Decimal
        ) as depth:
            bids = [
                await client.order_limit_buy(
                    symbol="BTCUSD", quantity="0.0100", price=f"{28000 + n}.00"
                )
                for n in range(5)
            ]
            await client.order_limit_sell(symbol="BTCUSD", quantity="0.0100", price="32000.00")
            await client.order_market_buy(symbol="BTCUSD", quantity="0.0100")  # takes a level
            await client.cancel_order(symbol="BTCUSD", orderId=bids[2]["orderId"])  # removes one
            final = await client.get_order_book(symbol="BTCUSD", limit=5000)

            def levels(pairs: list[list[str]]) -> list[list[Decimal]]:
                return [[Decimal(price), Decimal(qty)] for price, qty in pairs]

            expected = (levels(final["bids"]), levels(final["asks"]))
            deadline = time.monotonic() + 15
            cache = await depth.recv()
            while (cache.get_bids(), cache.get_asks()) != expected:
                assert time.monotonic() < deadline, (cache.get_bids(), expected)
                cache = await asyncio.wait_for(depth.recv(), 15)
    finally:
        await client.close_connection()


def _reports(received: list[Any], order_id: int) -> list[dict[str, Any]]:
    return [m for m in received if m.get("e") == "executionReport" and m["i"] == order_id]


async def test_user_data_stream(
    stack: Stack, accounts: Accounts, open_stream: Callable[..., Any]
) -> None:
    """executionReport and listStatus on `/ws/<listenKey>`: a stop order's acceptance, its
    trigger and fill; an OCO list's legs, its status and its cancel."""
    trader = accounts(ETH="1")
    # Placed before the stream is opened: its later fill is still reported in full.
    earlier = await asyncio.to_thread(
        trader.client.order_limit_sell, symbol="ETHUSD", quantity="0.0100", price="1999.99"
    )
    key = await asyncio.to_thread(trader.client.stream_get_listen_key)
    assert len(key) == 60
    stream = await open_stream(f"/ws/{key}")
    await asyncio.sleep(0.3)  # the subscription is in place before the first order
    buyer = accounts(USD="100")
    await asyncio.to_thread(buyer.client.order_market_buy, symbol="ETHUSD", quantity="0.0100")
    await stream.until(lambda received: len(_reports(received, earlier["orderId"])) == 1)
    [sold] = _reports(stream.received, earlier["orderId"])
    assert {k: sold[k] for k in ("o", "q", "p", "x", "X", "l", "L", "z", "m", "g")} == {
        "o": "LIMIT", "q": "0.0100", "p": "1999.99", "x": "TRADE", "X": "FILLED",
        "l": "0.0100", "L": "1999.99", "z": "0.0100", "m": True, "g": -1,
    }  # fmt: skip

    async def trade_at(price: str, bid: str, sold: str) -> None:
        bidder, seller = accounts(USD="10000"), accounts(ETH="1")
        await asyncio.to_thread(
            bidder.client.order_limit_buy, symbol="ETHUSD", quantity=bid, price=price
        )
        await asyncio.to_thread(seller.client.order_market_sell, symbol="ETHUSD", quantity=sold)

    await trade_at("1900.00", "0.0100", "0.0100")
    stop = await asyncio.to_thread(
        trader.client.create_order,
        symbol="ETHUSD", side="SELL", type="STOP_LOSS_LIMIT", timeInForce="GTC",
        quantity="0.0100", price="1700.00", stopPrice="1800.00",
    )  # fmt: skip
    await stream.until(lambda received: len(_reports(received, stop["orderId"])) == 1)
    [accepted] = _reports(stream.received, stop["orderId"])
    assert {k: accepted[k] for k in ("s", "c", "S", "o", "f", "q", "p", "P", "g", "x", "X")} == {
        "s": "ETHUSD", "c": stop["clientOrderId"], "S": "SELL", "o": "STOP_LOSS_LIMIT",
        "f": "GTC", "q": "0.0100", "p": "1700.00", "P": "1800.00", "g": -1, "x": "NEW", "X": "NEW",
    }  # fmt: skip
    assert accepted["w"] is False and "W" not in accepted

    # A trade at 1750 reaches the stop: reported working, then filled against the 1750 bid.
    await trade_at("1750.00", "0.0300", "0.0200")
    await stream.until(lambda received: len(_reports(received, stop["orderId"])) == 3)
    _, triggered, filled = _reports(stream.received, stop["orderId"])
    assert (triggered["x"], triggered["X"], triggered["w"]) == ("NEW", "NEW", True)
    assert triggered["W"] >= accepted["T"]
    assert (filled["x"], filled["X"], filled["l"], filled["L"], filled["z"]) == (
        "TRADE", "FILLED", "0.0100", "1750.00", "0.0100",
    )  # fmt: skip
    assert (filled["Z"], filled["n"], filled["N"], filled["m"]) == (
        "17.500000",
        "0.035000",
        "USD",
        False,
    )

    placed = await asyncio.to_thread(
        trader.client.create_oco_order,
        symbol="ETHUSD", side="SELL", quantity="0.1000", aboveType="LIMIT_MAKER",
        abovePrice="2500.00", belowType="STOP_LOSS", belowStopPrice="1600.00",
        listClientOrderId="stream-list",
    )  # fmt: skip
    number = placed["orderListId"]
    legs = [order["orderId"] for order in placed["orders"]]

    def list_statuses(received: list[Any]) -> list[dict[str, Any]]:
        return [m for m in received if m.get("e") == "listStatus"]

    await stream.until(lambda received: len(list_statuses(received)) == 1)
    reports = [r for leg in legs for r in _reports(stream.received, leg)]
    assert [(r["o"], r["g"], r["x"], r["w"]) for r in reports] == [
        ("LIMIT_MAKER", number, "NEW", True), ("STOP_LOSS", number, "NEW", False),
    ]  # fmt: skip
    [started] = list_statuses(stream.received)
    assert {k: started[k] for k in ("s", "g", "c", "l", "L", "r", "C")} == {
        "s": "ETHUSD", "g": number, "c": "OCO", "l": "EXEC_STARTED", "L": "EXECUTING",
        "r": "NONE", "C": "stream-list",
    }  # fmt: skip
    assert [leg["i"] for leg in started["O"]] == legs

    await asyncio.to_thread(trader.client.v3_delete_order_list, symbol="ETHUSD", orderListId=number)
    await stream.until(lambda received: len(list_statuses(received)) == 2)
    assert [_reports(stream.received, leg)[-1]["X"] for leg in legs] == ["CANCELED", "CANCELED"]
    done = list_statuses(stream.received)[-1]
    assert (done["l"], done["L"], done["g"]) == ("ALL_DONE", "ALL_DONE", number)

    assert await asyncio.to_thread(trader.client.stream_keepalive, key) == {}
    other = accounts()
    with pytest.raises(BinanceAPIException) as caught:
        await asyncio.to_thread(other.client.stream_keepalive, key)
    assert (caught.value.code, caught.value.message) == (-1125, "This listenKey does not exist.")
    assert await asyncio.to_thread(trader.client.stream_close, key) == {}
    await stream.until(lambda received: received[-1].get("e") == "listenKeyExpired")
    assert stream.received[-1]["listenKey"] == key


def _events(received: list[Any], kind: str) -> list[dict[str, Any]]:
    return [m for m in received if isinstance(m, dict) and m.get("e") == kind]


async def test_user_data_stream_balance_events(
    stack: Stack, accounts: Accounts, open_stream: Callable[..., Any]
) -> None:
    """`outboundAccountPosition` after an order locks funds and after its fill, with the
    assets that changed; `balanceUpdate` and then `outboundAccountPosition` for a deposit."""
    trader = accounts(USD="100")
    key = await asyncio.to_thread(trader.client.stream_get_listen_key)
    stream = await open_stream(f"/ws/{key}")
    await asyncio.sleep(0.3)
    await asyncio.to_thread(
        trader.client.order_limit_buy, symbol="ETHUSD", quantity="0.0100", price="1000.00"
    )
    await stream.until(lambda received: len(_events(received, "outboundAccountPosition")) == 1)
    [locked] = _events(stream.received, "outboundAccountPosition")
    assert [(b["a"], Decimal(b["f"]), Decimal(b["l"])) for b in locked["B"]] == [
        ("USD", Decimal("90"), Decimal("10"))
    ]
    assert stream.received.index(locked) > stream.received.index(
        _events(stream.received, "executionReport")[0]
    )
    seller = accounts(ETH="1")
    await asyncio.to_thread(seller.client.order_market_sell, symbol="ETHUSD", quantity="0.0100")
    await stream.until(lambda received: len(_events(received, "outboundAccountPosition")) >= 2)
    await asyncio.sleep(0.3)  # the fill may take two reads back: the assets end up the same
    positions = _events(stream.received, "outboundAccountPosition")[1:]
    final = {b["a"]: (Decimal(b["f"]), Decimal(b["l"])) for p in positions for b in p["B"]}
    assert final["USD"] == (Decimal("90"), Decimal("0"))
    assert final["ETH"][1] == 0 and 0 < final["ETH"][0] <= Decimal("0.01")

    async with httpx.AsyncClient(base_url=stack.api.url, timeout=10) as http:
        answer = await http.post(
            "/api/v1/faucet",
            json={"asset": "USD", "amount": "5"},
            headers={"Authorization": f"Bearer {trader.access_token}"},
        )
        assert answer.status_code == 200, answer.text
    await stream.until(lambda received: len(_events(received, "balanceUpdate")) == 1)
    [deposit] = _events(stream.received, "balanceUpdate")
    assert (deposit["a"], Decimal(deposit["d"])) == ("USD", Decimal("5"))
    assert deposit["T"] <= deposit["E"]
    await stream.until(
        lambda received: any(
            b["a"] == "USD" and Decimal(b["f"]) == 95
            for p in _events(received, "outboundAccountPosition")
            for b in p["B"]
        )
    )
    after = next(
        m
        for m in stream.received[stream.received.index(deposit) :]
        if m.get("e") == "outboundAccountPosition"
    )
    assert [b["a"] for b in after["B"]] == ["USD"]


async def test_user_data_stream_without_the_listen_key_in_the_url(
    accounts: Accounts, open_stream: Callable[..., Any]
) -> None:
    """A URL ends up in access logs (an ingress's, a proxy's): the listen key can come in the
    first message instead, a SUBSCRIBE on a raw connection opened at `/ws/`."""
    trader = accounts(ETH="1")
    key = await asyncio.to_thread(trader.client.stream_get_listen_key)
    stream = await open_stream("/ws/")
    assert await stream.request({"method": "SUBSCRIBE", "params": [key], "id": 1}) == {
        "result": None,
        "id": 1,
    }
    order = await asyncio.to_thread(
        trader.client.order_limit_sell, symbol="ETHUSD", quantity="0.0100", price="2999.99"
    )
    await stream.until(lambda received: len(_reports(received, order["orderId"])) == 1)
    assert _reports(stream.received, order["orderId"])[0]["x"] == "NEW"


async def test_aggregate_trade_mini_ticker_and_every_market_streams(
    stack: Stack, accounts: Accounts, open_stream: Callable[..., Any]
) -> None:
    """On `/ws/<label>` (how ccxt.pro opens its connections) the label is no stream: the
    first message is the SUBSCRIBE's answer."""
    seller, buyer = accounts(BTC="1"), accounts(USD="100000")
    stream = await open_stream("/ws/0")
    names = ["btcusd@aggTrade", "btcusd@miniTicker", "!ticker@arr", "!miniTicker@arr"]
    assert await stream.request({"method": "SUBSCRIBE", "params": names, "id": 1}) == {
        "result": None,
        "id": 1,
    }
    assert stream.received[0] == {"result": None, "id": 1}
    assert (await stream.request({"method": "LIST_SUBSCRIPTIONS", "id": 2}))["result"] == sorted(
        names
    )
    await asyncio.to_thread(
        seller.client.order_limit_sell, symbol="BTCUSD", quantity="0.0100", price="20000.00"
    )
    bought = await asyncio.to_thread(
        buyer.client.order_market_buy, symbol="BTCUSD", quantity="0.0100"
    )
    fill = bought["fills"][-1]

    def event(name: str) -> Callable[[Any], bool]:
        return lambda m: isinstance(m, dict) and m.get("e") == name

    def listed(name: str) -> Callable[[Any], bool]:
        return lambda m: isinstance(m, list) and bool(m) and event(name)(m[0])

    def current(match: Callable[[Any], bool]) -> Callable[[Any], bool]:
        """A ticker (or the array of one) with the last trade's price."""
        return lambda m: match(m) and (m[0] if isinstance(m, list) else m)["c"] == fill["price"]

    def arrived(match: Callable[[Any], bool]) -> Callable[[list[Any]], bool]:
        return lambda got: any(match(m) for m in got)

    trade_id = fill["tradeId"]
    await stream.until(arrived(lambda m: event("aggTrade")(m) and m["a"] == trade_id))
    [agg] = [m for m in stream.received if event("aggTrade")(m) and m["a"] == trade_id]
    assert agg | {"E": 0, "T": 0} == {
        "e": "aggTrade", "E": 0, "s": "BTCUSD", "a": trade_id, "p": fill["price"],
        "q": fill["qty"], "f": trade_id, "l": trade_id, "T": 0, "m": False, "M": True,
    }  # fmt: skip
    # dbproc stores the ticker, ws polls it: the ticker streams follow within seconds.
    kinds = [current(event("24hrMiniTicker"))] + [
        current(listed(name)) for name in ("24hrTicker", "24hrMiniTicker")
    ]
    for match in kinds:
        await stream.until(arrived(match), timeout=20)
    mini, [full], [every_mini] = ([m for m in stream.received if k(m)][-1] for k in kinds)
    assert set(mini) == {"e", "E", "s", "c", "o", "h", "l", "v", "q"}
    assert mini["s"] == full["s"] == "BTCUSD"
    assert every_mini == mini
