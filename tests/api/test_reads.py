"""Reads of what a real dbproc process stored (orders, fills, trades, klines, tickers), and
public market data."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import httpx

from tests.harness.api import funded, limit
from tests.harness.stacks import Stack


async def test_orders_history_and_fills(http: httpx.AsyncClient, stack: Stack) -> None:
    maker = await funded(http, BTC="1", ETH="1")
    taker = await funded(http, USD="10000")
    ask = await maker.place(**limit("sell", "30000.00", "0.1000", client_order_id="c1"))
    gone = await maker.place(**limit("sell", "500.00", "0.5000", market="eth-usd"))
    assert ask.status_code == gone.status_code == 200
    bid = await taker.place(**limit("buy", "30000.00", "0.0400"))
    assert bid.json()["status"] == "filled"
    assert (await maker.delete(f"/api/v1/order/{gone.json()['order_id']}")).status_code == 200
    await stack.stored("btc-usd", "eth-usd")

    open_orders = (await maker.get("/api/v1/orders/open")).json()
    assert [o["order_id"] for o in open_orders] == [ask.json()["order_id"]]
    assert open_orders[0]["status"] == "partially_filled"
    assert open_orders[0]["filled_quantity"] == "0.0400"
    assert open_orders[0]["client_order_id"] == "c1"
    assert (await maker.get("/api/v1/orders/open", market="eth-usd")).json() == []
    history = (await maker.get("/api/v1/orders/history")).json()
    assert sorted((o["market"], o["status"]) for o in history) == [
        ("btc-usd", "partially_filled"),
        ("eth-usd", "canceled"),
    ]

    one = await maker.get(f"/api/v1/order/{ask.json()['order_id']}")
    assert one.status_code == 200, one.text
    [fill] = one.json()["fills"]
    assert fill == {
        "trade_id": fill["trade_id"],
        "price": "30000.00",
        "quantity": "0.0400",
        "quote_quantity": "1200.000000",
        "fee": "1.200000",
        "fee_asset": "USD",
        "liquidity": "maker",
    }
    # Another user's order does not exist for this one.
    assert (await taker.get(f"/api/v1/order/{ask.json()['order_id']}")).status_code == 404

    [mine] = (await maker.get("/api/v1/fills")).json()
    [theirs] = (await taker.get("/api/v1/fills", market="btc-usd")).json()
    assert (mine["liquidity"], mine["order_id"]) == ("maker", ask.json()["order_id"])
    assert (theirs["liquidity"], theirs["fee"], theirs["fee_asset"]) == (
        "taker",
        "0.00008000",
        "BTC",
    )
    assert theirs["order_id"] == bid.json()["order_id"]
    trades = (await http.get("/api/v1/trades", params={"market": "btc-usd"})).json()
    assert trades[0]["trade_id"] == fill["trade_id"] and trades[0]["taker_side"] == "buy"


async def test_markets_depth_and_trades(http: httpx.AsyncClient) -> None:
    markets = (await http.get("/api/v1/markets")).json()
    assert [m["name"] for m in markets] == ["ada-usd", "btc-usd", "eth-usd", "sol-usd"]
    btc = next(m for m in markets if m["name"] == "btc-usd")
    assert (btc["tick_size"], btc["lot_size"], btc["trading"]) == ("0.01", "0.0001", "Enabled")

    maker = await funded(http, BTC="1", USD="1000")
    for body in (
        {"side": "sell", "price": "90001.00", "quantity": "0.0200"},
        {"side": "sell", "price": "90002.00", "quantity": "0.0300"},
        {"side": "buy", "price": "1.00", "quantity": "2.0000"},
    ):
        placed = await maker.place(market="btc-usd", type="limit", **body)
        assert placed.status_code == 200, placed.text
    depth = (await http.get("/api/v1/depth", params={"market": "btc-usd", "limit": 500})).json()
    assert ["90001.00", "0.0200"] in depth["asks"] and ["90002.00", "0.0300"] in depth["asks"]
    assert ["1.00", "2.0000"] in depth["bids"]
    assert depth["last_update_id"] > 0
    assert (await http.get("/api/v1/depth", params={"market": "nope"})).status_code == 404
    assert (
        await http.get("/api/v1/depth", params={"market": "btc-usd", "limit": 0})
    ).status_code == 422
    assert (await http.get("/api/v1/trades", params={"market": "btc-usd"})).status_code == 200


async def test_tickers_and_klines(http: httpx.AsyncClient, stack: Stack) -> None:
    maker = await funded(http, ETH="1")
    taker = await funded(http, USD="1000")
    for price in ("10.00", "12.00"):
        assert (
            await maker.place(**limit("sell", price, "0.1000", market="eth-usd"))
        ).status_code == 200
        bought = await taker.place(**limit("buy", price, "0.1000", market="eth-usd"))
        assert bought.json()["status"] == "filled"
    await stack.stored("eth-usd")

    deadline = time.monotonic() + 15
    while True:
        tickers = (await http.get("/api/v1/tickers", params={"market": "eth-usd"})).json()
        if (tickers and tickers[0]["count"] >= 2) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    [ticker] = tickers
    assert (ticker["market"], ticker["last"], ticker["high"]) == ("eth-usd", "12.00", "12.00")
    assert (await http.get("/api/v1/tickers", params={"market": "nope"})).status_code == 404

    now = int(time.time() * 1000)
    candles = await http.get(
        "/api/v1/klines",
        params={"market": "eth-usd", "interval": "1m", "start": now - 180_000, "end": now + 60_000},
    )
    assert candles.status_code == 200, candles.text
    assert sum(Decimal(c["volume"]) for c in candles.json()) == Decimal("0.2")
    assert candles.json()[-1]["close"] == "12.00"
    bad = await http.get("/api/v1/klines", params={"market": "eth-usd", "interval": "7m"})
    assert bad.status_code == 400 and bad.json()["code"] == "unknown_interval"
    backwards = await http.get(
        "/api/v1/klines",
        params={"market": "eth-usd", "interval": "1m", "start": now, "end": now - 1},
    )
    assert backwards.status_code == 400
