"""One-minute candles stored as trades are stored, so candles are read, not computed.

On plain PostgreSQL every klines relation is a view over `candles_1m` (storage.klines): a day
of 1m candles is 1,440 rows instead of every trade of that day. dbproc upserts the candles of
the trades it stores in the same transaction, and the upsert adds up: open and close are the
prices of the lowest and highest trade id seen, so batches stored in any order, by any
replica, give the same candles. (TimescaleDB's continuous aggregates read `trades` directly.)
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg

from storage.klines import ORIGIN

CandleTrade = tuple[int, datetime, Decimal, Decimal, Decimal]
"""(trade id, time, price, quantity, quote quantity)."""

INSERT = (
    "INSERT INTO candles_1m AS c (market, bucket, open_trade, open, high, low, close_trade, "
    "close, volume, quote_volume, trades) "
)
ON_CONFLICT = (
    " ON CONFLICT (market, bucket) DO UPDATE SET "
    "open = CASE WHEN excluded.open_trade < c.open_trade THEN excluded.open ELSE c.open END, "
    "open_trade = least(c.open_trade, excluded.open_trade), "
    "close = CASE WHEN excluded.close_trade > c.close_trade THEN excluded.close ELSE c.close END, "
    "close_trade = greatest(c.close_trade, excluded.close_trade), "
    "high = greatest(c.high, excluded.high), low = least(c.low, excluded.low), "
    "volume = c.volume + excluded.volume, quote_volume = c.quote_volume + excluded.quote_volume, "
    "trades = c.trades + excluded.trades"
)
"""Adds a batch's candles to the stored ones (in any order, by any replica)."""
UPSERT = (
    INSERT
    + "SELECT $1, * FROM unnest($2::timestamptz[], $3::bigint[], $4::numeric[], $5::numeric[], "
    "$6::numeric[], $7::bigint[], $8::numeric[], $9::numeric[], $10::numeric[], $11::bigint[])"
    + ON_CONFLICT
)
MINUTES = (
    f"SELECT market, date_bin(INTERVAL '1 minute', ts, {ORIGIN}) AS b, "
    "min(trade_id), (array_agg(price ORDER BY trade_id))[1], max(price), min(price), "
    "max(trade_id), (array_agg(price ORDER BY trade_id DESC))[1], "
    "sum(qty), sum(quote_qty), count(*) "
)
"""The one-minute candles of trades (rows with market, trade_id, ts, price, qty, quote_qty):
add `FROM … GROUP BY market, b`."""


@dataclass
class Candle:
    open_trade: int
    open: Decimal
    high: Decimal
    low: Decimal
    close_trade: int
    close: Decimal
    volume: Decimal
    quote_volume: Decimal
    trades: int

    def add(self, trade_id: int, price: Decimal, qty: Decimal, quote_qty: Decimal) -> None:
        if trade_id < self.open_trade:
            self.open_trade, self.open = trade_id, price
        if trade_id > self.close_trade:
            self.close_trade, self.close = trade_id, price
        self.high, self.low = max(self.high, price), min(self.low, price)
        self.volume += qty
        self.quote_volume += quote_qty
        self.trades += 1


def minute_of(moment: datetime) -> datetime:
    """The start of the minute (the 1m bucket; minutes align with the klines origin)."""
    return moment.replace(second=0, microsecond=0)


def fold(trades: Iterable[CandleTrade]) -> dict[datetime, Candle]:
    candles: dict[datetime, Candle] = {}
    for trade_id, moment, price, qty, quote_qty in trades:
        bucket = minute_of(moment)
        candle = candles.get(bucket)
        if candle is None:
            candles[bucket] = Candle(
                trade_id, price, price, price, trade_id, price, qty, quote_qty, 1
            )
        else:
            candle.add(trade_id, price, qty, quote_qty)
    return candles


async def add_trades(conn: asyncpg.Connection, market: str, trades: Iterable[CandleTrade]) -> None:
    """Fold `trades` (new ones: the upsert adds up) into the market's stored candles."""
    candles = sorted(fold(trades).items())  # one lock order for concurrent writers
    if not candles:
        return
    columns = [
        [bucket for bucket, _ in candles],
        *(
            [getattr(candle, name) for _, candle in candles]
            for name in (
                "open_trade", "open", "high", "low", "close_trade", "close", "volume",
                "quote_volume", "trades",
            )
        ),
    ]  # fmt: skip
    await conn.execute(UPSERT, market, *columns)


REBUILD = "INSERT INTO candles_1m " + MINUTES + "FROM trades WHERE market = $1 GROUP BY market, b"


async def rebuild(conn: asyncpg.Connection, market: str) -> None:
    """Recompute the market's candles from its stored trades (trades loaded around dbproc,
    as a bulk import or a benchmark does)."""
    async with conn.transaction():
        await conn.execute("DELETE FROM candles_1m WHERE market = $1", market)
        await conn.execute(REBUILD, market, timeout=3600)
