"""Trades for the klines tests, and their candles computed independently of the database."""

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import yaml

from dbproc.rows import TRADE_COLUMNS
from storage import candles
from xch.market import Market
from xch.marketdata import KLINE_ORIGIN, Kline, interval_seconds

ROOT = Path(__file__).resolve().parents[2]
MARKET = Market.model_validate(
    yaml.safe_load((ROOT / "examples" / "markets" / "btc-usd.yaml").read_text())
)
START = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)

Trade = tuple[int, datetime, Decimal, Decimal, Decimal]


def random_trades(
    seed: int, count: int, span: timedelta, start: datetime = START, first_id: int = 1
) -> list[Trade]:
    """Trades with ids in time order, several often sharing a millisecond."""
    rng = random.Random(seed)
    moments = sorted(
        start + timedelta(milliseconds=rng.randrange(int(span.total_seconds() * 1000)))
        for _ in range(count)
    )
    trades = []
    for trade_id, moment in enumerate(moments, start=first_id):
        price = Decimal(rng.randint(2_990_000, 3_010_000)).scaleb(-2)
        qty = Decimal(rng.randint(1, 500)).scaleb(-4)
        trades.append((trade_id, moment, price, qty, price * qty))
    return trades


def trade_records(market: str, trades: list[Trade]) -> list[tuple[object, ...]]:
    """Rows in TRADE_COLUMNS order."""
    zero = Decimal(0)
    return [
        (market, tid, ts, tid, p, q, qq, "m", "1", "t", "2", "buy", zero, zero, zero)
        for tid, ts, p, q, qq in trades
    ]


async def insert_trades(conn: asyncpg.Connection, market: str, trades: list[Trade]) -> None:
    """Store trades as dbproc does: the rows, and their one-minute candles."""
    await insert_trade_rows(conn, market, trades)
    await candles.add_trades(conn, market, trades)


async def insert_trade_rows(conn: asyncpg.Connection, market: str, trades: list[Trade]) -> None:
    """The trades' rows only (TimescaleDB's continuous aggregates read them directly)."""
    await conn.copy_records_to_table(
        "trades", columns=list(TRADE_COLUMNS), records=trade_records(market, trades)
    )


def expected_klines(trades: list[Trade], interval: str) -> list[Kline]:
    """OHLCV per bucket, computed here from the trades themselves."""
    seconds = interval_seconds(interval)
    buckets: dict[int, list[Trade]] = defaultdict(list)
    for trade in trades:
        offset = int((trade[1] - KLINE_ORIGIN).total_seconds()) // seconds
        buckets[offset].append(trade)
    klines = []
    for offset in sorted(buckets):
        group = sorted(buckets[offset])
        open_time = int((KLINE_ORIGIN + timedelta(seconds=offset * seconds)).timestamp() * 1000)
        klines.append(
            Kline(
                open_time=open_time,
                close_time=open_time + seconds * 1000 - 1,
                open=f"{group[0][2]:f}",
                high=f"{max(t[2] for t in group):f}",
                low=f"{min(t[2] for t in group):f}",
                close=f"{group[-1][2]:f}",
                volume=f"{sum(t[3] for t in group):f}",
                quote_volume=f"{sum(t[4] for t in group):f}",
                count=len(group),
            )
        )
    return klines
