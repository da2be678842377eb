"""Klines relations in Timescale mode, on PGlite with TimescaleDB 2.23 (tools/pglite): the same
trades give the same candles as the plain-PostgreSQL views and as an independent computation.

PGlite runs no background workers, so the refresh policies never fire by themselves: the test
refreshes each continuous aggregate itself, shortest interval first (each is built from the
next shorter one).
"""

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import asyncpg
import pytest

from dbproc.writer import Batch, store_market_batches
from storage.klines import (
    compute_ticker,
    drop_on,
    existing_relations,
    fetch_klines,
    has_timescale,
    hierarchy,
    missing_on,
    provision_on,
    relation_name,
)
from tests.dbproc.test_writer import UNITS, oco_and_stop_events
from tests.storage.trades import (
    MARKET,
    START,
    Trade,
    expected_klines,
    insert_trade_rows,
    insert_trades,
    random_trades,
)
from xch.market import Market

WINDOW = (START - timedelta(days=2), START + timedelta(days=3))


@pytest.fixture
async def ts(tsdb: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """The PGlite connection; the module shares one database, so each test drops MARKET,
    and the journal legs the drop keeps (the tests' trades reuse seqs)."""
    try:
        yield tsdb
    finally:
        await drop_on(tsdb, MARKET.name)
        await tsdb.execute("DELETE FROM journal_stored WHERE market = $1", MARKET.name)


async def refresh(conn: asyncpg.Connection, market: Market, end: datetime | None = None) -> None:
    """Materialize every bucket that ends by `end` (None: every bucket), as the refresh
    policies do with their end offset, which leaves the current bucket to real-time
    aggregation."""
    for level in hierarchy(market.spec.klines.intervals):
        name = relation_name(level.interval, market.name)
        await conn.execute(
            "CALL refresh_continuous_aggregate($1, NULL, $2::timestamptz)", name, end
        )


async def watermark(conn: asyncpg.Connection, interval: str) -> datetime:
    """Where the materialized buckets of MARKET's `interval` aggregate end."""
    moment: datetime = await conn.fetchval(
        "SELECT _timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark("
        "mat_hypertable_id)) FROM _timescaledb_catalog.continuous_agg WHERE user_view_name = $1",
        relation_name(interval, MARKET.name),
    )
    return moment


async def assert_same_klines(
    ts: asyncpg.Connection, plain: asyncpg.Connection, trades: list[Trade]
) -> None:
    for interval in MARKET.spec.klines.intervals:
        timescale = await fetch_klines(ts, MARKET.name, interval, *WINDOW, 5000)
        assert timescale == await fetch_klines(plain, MARKET.name, interval, *WINDOW, 5000)
        assert timescale == expected_klines(trades, interval), interval
    now = trades[-1][1] + timedelta(seconds=1)
    intervals = MARKET.spec.klines.intervals
    ticker = await compute_ticker(ts, MARKET.name, intervals, now)
    assert ticker is not None
    assert ticker == await compute_ticker(plain, MARKET.name, intervals, now)


async def test_provisioning_makes_hierarchical_real_time_continuous_aggregates(
    ts: asyncpg.Connection,
) -> None:
    assert await has_timescale(ts)
    assert await ts.fetchval(
        "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = 'trades'"
    )
    await provision_on(ts, MARKET)
    await provision_on(ts, MARKET)  # idempotent
    rows = await ts.fetch(
        "SELECT c.user_view_name AS name, p.user_view_name AS parent, "
        "i.materialized_only, i.hypertable_name "
        "FROM _timescaledb_catalog.continuous_agg c "
        "LEFT JOIN _timescaledb_catalog.continuous_agg p "
        "ON p.mat_hypertable_id = c.parent_mat_hypertable_id "
        "JOIN timescaledb_information.continuous_aggregates i ON i.view_name = c.user_view_name"
    )
    found = {row["name"]: row["parent"] for row in rows}
    assert found == {
        relation_name(level.interval, MARKET.name): (
            relation_name(level.parent, MARKET.name) if level.parent else None
        )
        for level in hierarchy(MARKET.spec.klines.intervals)
    }
    assert all(not row["materialized_only"] for row in rows)
    assert [row["hypertable_name"] for row in rows if row["parent"] is None] == ["trades"]
    policies = await ts.fetch(
        "SELECT hypertable_name FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_refresh_continuous_aggregate'"
    )
    assert {row["hypertable_name"] for row in policies} == set(found)


async def test_what_is_missing_is_found_and_made_again(ts: asyncpg.Connection) -> None:
    """The operator's drift check: a lost refresh policy or aggregate, a retired row."""
    assert await missing_on(ts, MARKET) == [f"market row {MARKET.name}", *(
        relation_name(level.interval, MARKET.name)
        for level in hierarchy(MARKET.spec.klines.intervals))]  # fmt: skip
    await provision_on(ts, MARKET)
    assert await missing_on(ts, MARKET) == []
    hourly = relation_name("1h", MARKET.name)
    await ts.execute("SELECT remove_continuous_aggregate_policy($1::regclass)", hourly)
    await ts.execute("UPDATE markets SET deleted_at = now() WHERE name = $1", MARKET.name)
    assert await missing_on(ts, MARKET) == [
        f"market row {MARKET.name}", f"refresh policy of {hourly}"]  # fmt: skip
    await provision_on(ts, MARKET)
    assert await missing_on(ts, MARKET) == []


async def test_candles_equal_the_plain_views_materialized_and_in_real_time(
    ts: asyncpg.Connection, db: asyncpg.Connection
) -> None:
    for conn in (ts, db):
        await provision_on(conn, MARKET)
    assert not await has_timescale(db)
    trades = random_trades(seed=11, count=3000, span=timedelta(hours=30))
    await insert_trade_rows(ts, MARKET.name, trades)
    await insert_trades(db, MARKET.name, trades)
    now = trades[-1][1] + timedelta(milliseconds=1)
    await refresh(ts, MARKET, now)
    assert await watermark(ts, "1m") == now.replace(second=0, microsecond=0)
    assert await watermark(ts, "1d") == now.replace(hour=0, minute=0, second=0, microsecond=0)
    await assert_same_klines(ts, db, trades)

    # Real-time aggregation: trades stored after the refresh, in the current buckets and
    # later ones, show up without another.
    later = random_trades(
        seed=12, count=800, span=timedelta(hours=10), start=now, first_id=trades[-1][0] + 1
    )
    await insert_trade_rows(ts, MARKET.name, later)
    await insert_trades(db, MARKET.name, later)
    await assert_same_klines(ts, db, trades + later)

    await refresh(ts, MARKET)
    assert await watermark(ts, "1m") > later[-1][1]
    await assert_same_klines(ts, db, trades + later)


async def test_drop_removes_the_aggregates_their_policies_and_the_trades(
    ts: asyncpg.Connection,
) -> None:
    await provision_on(ts, MARKET)
    await insert_trade_rows(
        ts, MARKET.name, random_trades(seed=2, count=300, span=timedelta(days=2))
    )
    await refresh(ts, MARKET)
    await drop_on(ts, MARKET.name)
    assert await existing_relations(ts, MARKET.name) == []
    assert (
        await ts.fetchval("SELECT count(*) FROM timescaledb_information.continuous_aggregates") == 0
    )
    assert (
        await ts.fetchval(
            "SELECT count(*) FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_refresh_continuous_aggregate'"
        )
        == 0
    )
    assert await ts.fetchval("SELECT count(*) FROM trades") == 0
    assert await ts.fetchval("SELECT count(*) FROM markets") == 0
    await drop_on(ts, MARKET.name)  # idempotent


async def test_dbproc_stores_into_the_hypertable_the_rows_it_stores_on_plain_postgresql(
    ts: asyncpg.Connection, db: asyncpg.Connection
) -> None:
    """The writer's derivation (INSERT … SELECT from its staging tables, in one statement with
    the journal legs and the candles) works on a hypertable."""
    events = oco_and_stop_events()
    for conn in (ts, db):
        await store_market_batches(conn, MARKET.name, UNITS, [Batch(events[:3]), Batch(events[3:])])
    try:
        for query in (
            "SELECT * FROM trades ORDER BY trade_id",
            "SELECT * FROM orders ORDER BY order_id",
            "SELECT * FROM order_events ORDER BY seq",
            "SELECT * FROM journal ORDER BY seq, leg",
            "SELECT * FROM candles_1m ORDER BY bucket",
        ):
            stored = [tuple(row) for row in await ts.fetch(query)]
            assert stored, query
            assert stored == [tuple(row) for row in await db.fetch(query)], query
    finally:
        # The module shares one database; drop_on (the fixture) leaves the journal.
        await ts.execute(
            "DELETE FROM journal_stored; DELETE FROM stored_batches; DELETE FROM candles_1m"
        )
