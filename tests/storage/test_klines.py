"""Klines relations on plain PostgreSQL: provisioning, contents, index use, dropping."""

from datetime import timedelta
from decimal import Decimal

import asyncpg

from storage.klines import (
    compute_ticker,
    drop_on,
    existing_relations,
    fetch_klines,
    hierarchy,
    provision_on,
    relation_name,
    retire_on,
)
from tests.storage.trades import MARKET, START, expected_klines, insert_trades, random_trades


def test_hierarchy_builds_each_interval_from_the_largest_divisor() -> None:
    levels = {level.interval: level.parent for level in hierarchy(["1d", "5m", "1h", "1m", "3m"])}
    assert levels == {"1m": None, "3m": "1m", "5m": "1m", "1h": "5m", "1d": "1h"}
    assert relation_name("1m", "btc-usd") == "klines_1m_btc_usd"


async def test_klines_equal_an_independent_computation(db: asyncpg.Connection) -> None:
    await provision_on(db, MARKET)
    await provision_on(db, MARKET)  # idempotent
    trades = random_trades(seed=7, count=3000, span=timedelta(hours=30))
    await insert_trades(db, MARKET.name, trades)
    await insert_trades(db, "eth-usd", random_trades(seed=8, count=200, span=timedelta(hours=3)))
    for interval in MARKET.spec.klines.intervals:
        got = await fetch_klines(
            db, MARKET.name, interval, START - timedelta(days=2), START + timedelta(days=2), 5000
        )
        assert got == expected_klines(trades, interval), interval


async def test_klines_range_and_limit(db: asyncpg.Connection) -> None:
    await provision_on(db, MARKET)
    trades = random_trades(seed=3, count=500, span=timedelta(hours=2))
    await insert_trades(db, MARKET.name, trades)
    start, end = START + timedelta(minutes=30), START + timedelta(minutes=40)
    got = await fetch_klines(db, MARKET.name, "1m", start, end, 1000)
    assert [k.open_time for k in got] == [
        int((start + timedelta(minutes=n)).timestamp() * 1000) for n in range(10)
    ]
    assert len(await fetch_klines(db, MARKET.name, "1m", start, end, 3)) == 3


async def test_a_day_of_minute_candles_reads_through_the_index(db: asyncpg.Connection) -> None:
    await provision_on(db, MARKET)
    await insert_trades(db, MARKET.name, random_trades(seed=1, count=2000, span=timedelta(days=3)))
    await db.execute("ANALYZE candles_1m")
    await db.execute("SET enable_seqscan = off")
    rows = await db.fetch(
        f"EXPLAIN SELECT * FROM {relation_name('1m', MARKET.name)} "
        "WHERE bucket >= $1 AND bucket < $2",
        START,
        START + timedelta(days=1),
    )
    text = "\n".join(row[0] for row in rows)
    assert "candles_1m_pkey" in text and "trades" not in text, text


async def test_ticker_covers_the_last_day(db: asyncpg.Connection) -> None:
    await provision_on(db, MARKET)
    trades = random_trades(seed=5, count=1000, span=timedelta(hours=30))
    await insert_trades(db, MARKET.name, trades)
    now = START + timedelta(hours=30)
    ticker = await compute_ticker(db, MARKET.name, MARKET.spec.klines.intervals, now)
    assert ticker is not None
    day_start = now - timedelta(days=1)
    # The window starts at the first whole 1m bucket in the last 24 hours.
    window = [
        t
        for t in trades
        if t[1]
        >= day_start.replace(second=0, microsecond=0)
        + (timedelta(minutes=1) if day_start.second or day_start.microsecond else timedelta())
    ]
    assert ticker.count == len(window)
    assert Decimal(ticker.volume) == sum(t[3] for t in window)
    assert ticker.last == f"{trades[-1][2]:f}"
    assert Decimal(ticker.high) == max(t[2] for t in window)
    assert Decimal(ticker.price_change) == trades[-1][2] - window[0][2]


async def test_drop_removes_relations_and_history_but_not_the_journal(
    db: asyncpg.Connection,
) -> None:
    await provision_on(db, MARKET)
    await insert_trades(db, MARKET.name, random_trades(seed=2, count=50, span=timedelta(hours=1)))
    await db.execute(
        "INSERT INTO journal_stored VALUES ($1, 0, 0, 'trade', '1', '1', 'USD', 1, -1, now())",
        MARKET.name,
    )
    journal = "SELECT * FROM journal ORDER BY seq, leg"
    before = await db.fetch(journal)
    assert len(before) == 1 + 4 * 50  # each trade's legs are derived from its row
    await retire_on(db, MARKET.name)
    assert await db.fetchval("SELECT deleted_at IS NOT NULL FROM markets") is True
    await drop_on(db, MARKET.name)
    assert await existing_relations(db, MARKET.name) == []
    assert await db.fetchval("SELECT count(*) FROM trades") == 0
    assert await db.fetchval("SELECT count(*) FROM markets") == 0
    assert await db.fetch(journal) == before  # the derived legs were stored first
    await drop_on(db, MARKET.name)  # idempotent
