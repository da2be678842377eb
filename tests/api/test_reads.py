"""Reads of stored orders and fills (rows as dbproc writes them), and public market data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import httpx
import redis.asyncio

from tests.api.stack import Stack, funded, signup
from xch import keys
from xch.marketdata import Ticker, encode_ticker

NOW = datetime.now(UTC).replace(microsecond=0)


async def _store(dsn: str, user: str, other: str) -> None:
    """An open and a done order of `user`, one of `other`, and a trade between them."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            "INSERT INTO orders (market, order_id, user_id, client_order_id, side, type, tif, stp,"
            " price, qty, quote_qty, filled_qty, filled_quote, fee, final_status, reason,"
            " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'limit', 'GTC', 'EXPIRE_MAKER',"
            " $6, $7, NULL, $8, $9, 0, $10, $11, $12, $12)",
            [
                ("btc-usd", f"btc-usd.{user}01", user, "c1", "buy", Decimal("100.00"),
                 Decimal("1.0000"), Decimal("0.4000"), Decimal("40.000000"), None, None,
                 NOW - timedelta(seconds=2)),
                ("eth-usd", f"eth-usd.{user}02", user, None, "sell", Decimal("5.00"),
                 Decimal("2.0000"), Decimal("0"), Decimal("0"), "canceled", "user",
                 NOW - timedelta(seconds=1)),
                ("btc-usd", f"btc-usd.{other}03", other, None, "sell", Decimal("100.00"),
                 Decimal("0.4000"), Decimal("0.4000"), Decimal("40.000000"), "filled", "", NOW),
            ],
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO trades (market, trade_id, ts, seq, price, qty, quote_qty, maker_order,"
            " maker_user, taker_order, taker_user, taker_side, maker_fee, taker_fee) VALUES"
            " ('btc-usd', $1, $2, 1, 100.00, 0.4000, 40.000000, $3, $4, $5, $6, 'sell',"
            " 0.00004000, 0.080000)",
            int(user) * 1000,
            NOW,
            f"btc-usd.{user}01",
            user,
            f"btc-usd.{other}03",
            other,
        )
    finally:
        await conn.close()


async def test_orders_history_and_fills(http: httpx.AsyncClient, stack: Stack) -> None:
    trader, other = await signup(http), await signup(http)
    await _store(stack.database_url, trader.user_id, other.user_id)

    open_orders = (await trader.get("/api/v1/orders/open")).json()
    assert [o["order_id"] for o in open_orders] == [f"btc-usd.{trader.user_id}01"]
    assert open_orders[0]["status"] == "partially_filled"
    assert open_orders[0]["filled_quantity"] == "0.4000"
    assert (await trader.get("/api/v1/orders/open", market="eth-usd")).json() == []
    history = (await trader.get("/api/v1/orders/history")).json()
    assert [(o["market"], o["status"]) for o in history] == [
        ("eth-usd", "canceled"),
        ("btc-usd", "partially_filled"),
    ]

    one = await trader.get(f"/api/v1/order/btc-usd.{trader.user_id}01")
    assert one.status_code == 200
    assert one.json()["client_order_id"] == "c1"
    assert one.json()["fills"] == [
        {
            "trade_id": int(trader.user_id) * 1000,
            "price": "100.00",
            "quantity": "0.4000",
            "quote_quantity": "40.000000",
            "fee": "0.00004000",
            "fee_asset": "BTC",
            "liquidity": "maker",
        }
    ]
    # Another user's order does not exist for this one.
    assert (await trader.get(f"/api/v1/order/btc-usd.{other.user_id}03")).status_code == 404

    [mine] = (await trader.get("/api/v1/fills")).json()
    [theirs] = (await other.get("/api/v1/fills", market="btc-usd")).json()
    assert (mine["liquidity"], mine["order_id"]) == ("maker", f"btc-usd.{trader.user_id}01")
    assert (theirs["liquidity"], theirs["fee"], theirs["fee_asset"]) == ("taker", "0.080000", "USD")
    assert theirs["time"] == int(NOW.timestamp() * 1000)


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
    ticker = Ticker(
        market="eth-usd", open_time=1, close_time=2, open="1.00", high="2.00", low="0.50",
        last="1.50", volume="10.0000", quote_volume="15.000000", count=3, price_change="0.50",
        price_change_percent="50.00",
    )  # fmt: skip
    client = redis.asyncio.Redis.from_url(stack.redis_url)
    try:
        await client.set(keys.market_ticker("eth-usd"), encode_ticker(ticker))
    finally:
        await client.aclose()
    tickers = (await http.get("/api/v1/tickers")).json()
    assert [t["market"] for t in tickers] == ["eth-usd"]
    assert tickers[0]["last"] == "1.50" and tickers[0]["price_change_percent"] == "50.00"
    assert (await http.get("/api/v1/tickers", params={"market": "btc-usd"})).json() == []

    conn = await asyncpg.connect(stack.database_url)
    try:
        minute = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
        await conn.execute(
            "INSERT INTO trades (market, trade_id, ts, seq, price, qty, quote_qty, maker_order,"
            " maker_user, taker_order, taker_user, taker_side, maker_fee, taker_fee) VALUES"
            " ('eth-usd', 1, $1, 1, 10.00, 1.0000, 10.000000, 'a', '1', 'b', '2', 'buy', 0, 0),"
            " ('eth-usd', 2, $2, 2, 12.00, 2.0000, 24.000000, 'c', '1', 'd', '2', 'buy', 0, 0)",
            minute + timedelta(seconds=5),
            minute + timedelta(seconds=50),
        )
    finally:
        await conn.close()
    start = int(minute.timestamp() * 1000)
    candles = await http.get(
        "/api/v1/klines",
        params={"market": "eth-usd", "interval": "1m", "start": start, "end": start + 3_600_000},
    )
    assert candles.status_code == 200, candles.text
    assert candles.json() == [
        {
            "open_time": start,
            "close_time": start + 59_999,
            "open": "10.00",
            "high": "12.00",
            "low": "10.00",
            "close": "12.00",
            "volume": "3.0000",
            "quote_volume": "34.000000",
            "count": 2,
        }
    ]
    bad = await http.get("/api/v1/klines", params={"market": "eth-usd", "interval": "7m"})
    assert bad.status_code == 400 and bad.json()["code"] == "unknown_interval"
    backwards = await http.get(
        "/api/v1/klines",
        params={"market": "eth-usd", "interval": "1m", "start": start, "end": start - 1},
    )
    assert backwards.status_code == 400
