"""Ticker and kline streams: the ticker dbproc stores with the latest trade price overlaid, and
the current candle seeded from storage and then folded with live trades."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio

from ledger.gateway import Gateway
from storage import candles
from storage.klines import provision_on, utc_from_ms
from storage.migrate import upgrade
from tests.harness.engine import (
    EngineProcess,
    load_rules,
    place,
    read_events,
    wait_applied,
    write_manifest,
)
from tests.harness.servers import PostgresServer
from tests.harness.ws import WsClient, WsProcess
from tests.ws.test_protocol import register
from tests.ws.test_streams import fund, limit
from xch import keys
from xch.market import MarketRules
from xch.marketdata import Ticker, encode_ticker
from xch.money import format_minor, format_units
from xch.schemas import BUY, SELL, Trade


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    """A market of its own: the session's database is shared with other tests."""
    return write_manifest(tmp_path, "wsk-usd")


async def trade_at(gateway: Gateway, rules: MarketRules, n: int, price: int) -> str:
    """One trade of 10 lots at `price` ticks (alice's resting sell, bob's buy); its input id."""
    await place(gateway, rules, limit(f"s{n}", "alice", SELL, price, 10))
    entry = await place(gateway, rules, limit(f"b{n}", "bob", BUY, price, 10))
    assert entry is not None
    return entry


async def store_trades(conn: asyncpg.Connection, rules: MarketRules, trades: list[Trade]) -> None:
    """What dbproc would have written for these trades: the rows and their candles."""
    await candles.add_trades(
        conn,
        rules.name,
        [
            (
                t.trade_id,
                utc_from_ms(t.ts),
                Decimal(format_units(t.price, rules.tick)),
                Decimal(format_units(t.qty, rules.lot)),
                Decimal(format_minor(t.quote_qty, rules.quote_scale)),
            )
            for t in trades
        ],
    )
    for t in trades:
        await conn.execute(
            "INSERT INTO trades (market, trade_id, ts, seq, price, qty, quote_qty, maker_order, "
            "maker_user, taker_order, taker_user, taker_side, maker_fee, taker_fee) "
            "VALUES ($1, $2, $3, $4, $5::numeric, $6::numeric, $7::numeric, $8, $9, $10, $11, "
            "$12, 0, 0)",
            rules.name,
            t.trade_id,
            utc_from_ms(t.ts),
            t.seq,
            format_units(t.price, rules.tick),
            format_units(t.qty, rules.lot),
            format_minor(t.quote_qty, rules.quote_scale),
            t.maker_order,
            t.maker_user,
            t.taker_order,
            t.taker_user,
            t.taker_side,
        )


async def test_ticker_and_klines(
    redis_client: redis.asyncio.Redis,
    pg_conn: asyncpg.Connection,
    postgres_server: PostgresServer,
    manifest: Path,
    engines: Callable[[], EngineProcess],
    ws_servers: Callable[..., WsProcess],
) -> None:
    market = await register(redis_client, manifest)
    rules = load_rules(manifest)
    await upgrade(postgres_server.url)
    await provision_on(pg_conn, market)
    await pg_conn.execute("DELETE FROM trades WHERE market = $1", rules.name)
    engine = engines()
    await engine.wait_ready()
    gateway = Gateway(redis_client)
    await fund(gateway, ["alice", "bob"])

    # Trades 1 and 2 happen before ws runs: only storage knows them.
    await trade_at(gateway, rules, 1, 2_950_000)
    await wait_applied(redis_client, rules.name, await trade_at(gateway, rules, 2, 3_050_000))
    server = ws_servers(
        {"EXCHANGE_WS_POSTGRES_DSN": postgres_server.url, "EXCHANGE_WS_TICKER_SECONDS": "0.1"}
    )
    await server.wait_ready()
    # Trade 3: ws sees it, and storage has it too by the time the candle is seeded.
    await wait_applied(redis_client, rules.name, await trade_at(gateway, rules, 3, 3_000_000))
    trades = [e for e in await read_events(redis_client, rules.name) if isinstance(e, Trade)]
    assert [t.trade_id for t in trades] == [1, 2, 3]
    await store_trades(pg_conn, rules, trades)
    ticker = Ticker(
        market=rules.name,
        open_time=trades[0].ts - 1000,
        close_time=trades[1].ts,
        open="29000.00",
        high="30500.00",
        low="29000.00",
        last="30500.00",
        volume="0.0020",
        quote_volume="60.000000",
        count=2,
        price_change="1500.00",
        price_change_percent="5.17",
    )
    await redis_client.set(keys.market_ticker(rules.name), encode_ticker(ticker))

    client = await WsClient.open(server.url)
    try:
        await client.subscribe("kline_1d@WSK-USD", "ticker@wsk-usd")
        await client.collect(lambda c: bool(c.stream("kline_1d@wsk-usd")))
        await client.collect(lambda c: bool(c.stream("ticker@wsk-usd")))
        candle = client.stream("kline_1d@wsk-usd")[0]
        day = 86_400_000
        open_time = trades[0].ts - (trades[0].ts - 946_857_600_000) % day
        assert candle == {
            "type": "kline",
            "market": "wsk-usd",
            "interval": "1d",
            "open_time": open_time,
            "close_time": open_time + day - 1,
            "open": "29500.00",
            "high": "30500.00",
            "low": "29500.00",
            "close": "30000.00",
            "volume": "0.0030",
            "quote_volume": "90.000000",
            "count": 3,
        }
        first_ticker = client.stream("ticker@wsk-usd")[0]
        assert first_ticker["last"] == "30000.00"  # ws's latest trade over dbproc's figure
        assert first_ticker["price_change"] == "1000.00"
        assert first_ticker["price_change_percent"] == "3.45"
        assert (first_ticker["open"], first_ticker["volume"]) == ("29000.00", "0.0020")

        await trade_at(gateway, rules, 4, 3_100_000)
        await client.collect(lambda c: len(c.stream("kline_1d@wsk-usd")) >= 2)
        assert client.stream("kline_1d@wsk-usd")[1] == candle | {
            "high": "31000.00",
            "close": "31000.00",
            "volume": "0.0040",
            "quote_volume": "121.000000",
            "count": 4,
        }
        await client.collect(
            lambda c: c.stream("ticker@wsk-usd")[-1]["last"] == "31000.00", timeout=5
        )
        latest = client.stream("ticker@wsk-usd")[-1]
        assert (latest["high"], latest["price_change"]) == ("31000.00", "2000.00")
    finally:
        await client.close()
