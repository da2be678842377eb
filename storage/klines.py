"""Candles per market and interval, and the 24-hour ticker computed from them.

Each Market gets one relation per kline interval of its spec, named `klines_<interval>_<market>`
(`-` in the market name becomes `_`; market names are DNS labels, so that cannot collide),
with the columns bucket, open, high, low, close, volume, quote_volume, trades:

- with TimescaleDB, a continuous aggregate with real-time aggregation and a refresh policy,
  built hierarchically (each interval from the largest provisioned one that divides it);
- on plain PostgreSQL, a view over the stored one-minute candles (`candles_1m`, kept by dbproc
  with the trades: storage.candles), `date_bin` grouping them for longer intervals, backed by
  one expression index per interval length, shared by every market.

Buckets start at 2000-01-03 00:00 UTC plus whole intervals (`xch.marketdata.KLINE_ORIGIN`:
TimescaleDB's default origin, a Monday, so weekly candles start on Mondays). Within a bucket,
trades are ordered by trade id.
"""

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from xch.market import Market
from xch.marketdata import KLINE_ORIGIN, Kline, Ticker, interval_seconds
from xch.money import format_decimal

ORIGIN = f"TIMESTAMPTZ '{KLINE_ORIGIN:%Y-%m-%d %H:%M:%S}+00'"
"""`xch.marketdata.KLINE_ORIGIN` as an SQL literal."""
COLUMNS = "bucket, open, high, low, close, volume, quote_volume, trades"


def relation_name(interval: str, market: str) -> str:
    return f"klines_{interval}_{market.replace('-', '_')}"


def _seconds(interval: str) -> str:
    return f"INTERVAL '{interval_seconds(interval)} seconds'"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class KlineLevel:
    """One interval of one market and where its candles come from (None: from trades)."""

    interval: str
    parent: str | None


def hierarchy(intervals: Iterable[str]) -> list[KlineLevel]:
    """Intervals from the shortest up, each built from the largest shorter one dividing it."""
    ordered = sorted(set(intervals), key=interval_seconds)
    levels: list[KlineLevel] = []
    for n, interval in enumerate(ordered):
        seconds = interval_seconds(interval)
        divisors = [p for p in ordered[:n] if seconds % interval_seconds(p) == 0]
        levels.append(KlineLevel(interval, divisors[-1] if divisors else None))
    return levels


# ---- DDL --------------------------------------------------------------------------------


def plain_index(interval: str) -> str | None:
    """The index that makes a day of `interval` candles a range scan (1m: the primary key)."""
    seconds = interval_seconds(interval)
    if seconds == 60:
        return None
    return (
        f"CREATE INDEX IF NOT EXISTS candles_1m_bin_{seconds} ON candles_1m "
        f"(market, date_bin({_seconds(interval)}, bucket, {ORIGIN}))"
    )


def plain_view(market: str, interval: str) -> str:
    """A view over the stored one-minute candles (storage.candles)."""
    head = f"CREATE OR REPLACE VIEW {relation_name(interval, market)} AS "
    where = f"FROM candles_1m WHERE market = {_literal(market)}"
    if interval_seconds(interval) == 60:
        return head + f"SELECT {COLUMNS} {where}"
    bucket = f"date_bin({_seconds(interval)}, bucket, {ORIGIN})"
    return (
        head + f"SELECT {bucket} AS bucket, "
        "(array_agg(open ORDER BY bucket))[1] AS open, max(high) AS high, min(low) AS low, "
        "(array_agg(close ORDER BY bucket DESC))[1] AS close, sum(volume) AS volume, "
        "sum(quote_volume) AS quote_volume, sum(trades)::bigint AS trades "
        f"{where} GROUP BY {bucket}"
    )


def continuous_aggregate(market: str, level: KlineLevel) -> str:
    name = relation_name(level.interval, market)
    head = (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name} WITH "
        "(timescaledb.continuous, timescaledb.materialized_only = false) AS "
    )
    if level.parent is None:
        body = (
            f"SELECT time_bucket({_seconds(level.interval)}, ts) AS bucket, "
            "first(price, trade_id) AS open, max(price) AS high, min(price) AS low, "
            "last(price, trade_id) AS close, sum(qty) AS volume, "
            "sum(quote_qty) AS quote_volume, count(*) AS trades "
            f"FROM trades WHERE market = {_literal(market)} GROUP BY 1"
        )
    else:
        body = (
            f"SELECT time_bucket({_seconds(level.interval)}, bucket) AS bucket, "
            "first(open, bucket) AS open, max(high) AS high, min(low) AS low, "
            "last(close, bucket) AS close, sum(volume) AS volume, "
            "sum(quote_volume) AS quote_volume, sum(trades)::bigint AS trades "
            f"FROM {relation_name(level.parent, market)} GROUP BY 1"
        )
    return head + body + " WITH NO DATA"


def refresh_policy(market: str, interval: str) -> str:
    """Re-materialize a week back (at least three buckets), so trades stored late (dbproc
    catching up after an outage) still reach the materialized candles."""
    seconds = interval_seconds(interval)
    start = max(3 * seconds, 7 * 86400)
    return (
        f"SELECT add_continuous_aggregate_policy({_literal(relation_name(interval, market))}, "
        f"start_offset => INTERVAL '{start} seconds', end_offset => {_seconds(interval)}, "
        f"schedule_interval => {_seconds(interval)}, if_not_exists => true)"
    )


# ---- provisioning -----------------------------------------------------------------------


async def has_timescale(conn: asyncpg.Connection) -> bool:
    found = await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    return found is not None


async def existing_relations(conn: asyncpg.Connection, market: str) -> list[str]:
    """The klines relations of `market` that exist (views and continuous aggregates)."""
    pattern = relation_name("%", market).replace("_", r"\_").replace(r"\%", "%")
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('v', 'm') AND c.relname LIKE $1",
        pattern,
    )
    return [row["relname"] for row in rows]


_MARKET_ROW = (
    "INSERT INTO markets (name, base_asset, base_scale, quote_asset, quote_scale, "
    "tick_size, lot_size, spec) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb) "
)


async def _insert_market_row(conn: asyncpg.Connection, market: Market, on_conflict: str) -> None:
    spec = market.spec
    await conn.execute(
        _MARKET_ROW + on_conflict,
        market.name,
        spec.base.asset,
        spec.base.scale,
        spec.quote.asset,
        spec.quote.scale,
        Decimal(spec.tick_size),
        Decimal(spec.lot_size),
        orjson.dumps(spec.model_dump(by_alias=True, mode="json")).decode(),
    )


async def record_market(conn: asyncpg.Connection, market: Market) -> None:
    """The market's row if it has none: the journal's trade legs read their assets and
    scales there (dbproc records it before it stores a trade of a market the operator has
    not provisioned yet)."""
    await _insert_market_row(conn, market, "ON CONFLICT (name) DO NOTHING")


async def provision_on(conn: asyncpg.Connection, market: Market) -> None:
    """Create (or bring up to date) the market's row and klines relations. Idempotent;
    intervals removed from the spec keep their relations (history is never dropped here)."""
    await _insert_market_row(
        conn, market, "ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, deleted_at = NULL"
    )
    spec = market.spec
    levels = hierarchy(spec.klines.intervals)
    if await has_timescale(conn):
        for level in levels:
            await conn.execute(continuous_aggregate(market.name, level))
            await conn.execute(refresh_policy(market.name, level.interval))
    else:
        for level in levels:
            index = plain_index(level.interval)
            if index is not None:
                await conn.execute(index)
            await conn.execute(plain_view(market.name, level.interval))


async def missing_on(conn: asyncpg.Connection, market: Market) -> list[str]:
    """What `provision_on` makes that is not there (read only, a few catalog lookups): the
    market's live row with the current spec, its klines relations and, with TimescaleDB,
    their refresh policies. Empty: nothing to do."""
    missing: list[str] = []
    row = await conn.fetchrow("SELECT spec, deleted_at FROM markets WHERE name = $1", market.name)
    spec = market.spec.model_dump(by_alias=True, mode="json")
    if row is None or row["deleted_at"] is not None or orjson.loads(row["spec"]) != spec:
        missing.append(f"market row {market.name}")
    wanted = [relation_name(level.interval, market.name)
              for level in hierarchy(market.spec.klines.intervals)]  # fmt: skip
    existing = set(await existing_relations(conn, market.name))
    missing += [relation for relation in wanted if relation not in existing]
    if await has_timescale(conn):
        refreshed = await _refreshed_aggregates(conn)
        missing += [f"refresh policy of {relation}" for relation in wanted
                    if relation in existing and relation not in refreshed]  # fmt: skip
    return missing


async def _refreshed_aggregates(conn: asyncpg.Connection) -> set[str]:
    """The continuous aggregates of the current schema that have a refresh policy (a job
    names the aggregate as its hypertable)."""
    rows = await conn.fetch(
        "SELECT hypertable_name FROM timescaledb_information.jobs "
        "WHERE proc_name = 'policy_refresh_continuous_aggregate' "
        "AND hypertable_schema = current_schema()"
    )
    return {row["hypertable_name"] for row in rows}


async def drop_on(conn: asyncpg.Connection, name: str) -> None:
    """Drop the market's klines relations (longest interval first, as continuous aggregates
    built on others require) and its trading history. The ledger journal and transfers
    stay: they are the record of where everyone's funds went (the legs derived from the
    market's trades and order events are stored before those rows go)."""
    relations = await existing_relations(conn, name)
    longest_first = sorted(relations, key=lambda rel: -interval_seconds(_interval_of(rel, name)))
    aggregates = await _continuous_aggregates(conn) if await has_timescale(conn) else set()
    for relation in longest_first:
        kind = "MATERIALIZED VIEW" if relation in aggregates else "VIEW"
        await conn.execute(f"DROP {kind} IF EXISTS {relation}")
    async with conn.transaction():
        for legs in ("journal_trade_legs", "journal_order_legs"):
            await conn.execute(
                f"INSERT INTO journal_stored SELECT * FROM {legs} WHERE market = $1", name
            )
        for table in ("trades", "candles_1m", "orders", "order_events", "stored_batches"):
            await conn.execute(f"DELETE FROM {table} WHERE market = $1", name)
        await conn.execute("DELETE FROM markets WHERE name = $1", name)


def _interval_of(relation: str, market: str) -> str:
    suffix = "_" + market.replace("-", "_")
    return relation[len("klines_") : -len(suffix)]


async def _continuous_aggregates(conn: asyncpg.Connection) -> set[str]:
    """Names of the continuous aggregates in the current schema. Their user-facing relation is
    a plain view (relkind 'v') over a hypertable, yet only DROP MATERIALIZED VIEW drops one."""
    rows = await conn.fetch(
        "SELECT view_name FROM timescaledb_information.continuous_aggregates "
        "WHERE view_schema = current_schema()"
    )
    return {row["view_name"] for row in rows}


async def retire_on(conn: asyncpg.Connection, name: str) -> None:
    """Mark the market deleted, keeping its history (`retention.onDelete: Retain`)."""
    await conn.execute("UPDATE markets SET deleted_at = now() WHERE name = $1", name)


async def _connected(dsn: str, work: Callable[[asyncpg.Connection], Awaitable[None]]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await work(conn)
    finally:
        await conn.close()


async def provision_market_storage(dsn: str, market: Market) -> None:
    await _connected(dsn, lambda conn: provision_on(conn, market))


async def drop_market_storage(dsn: str, name: str) -> None:
    await _connected(dsn, lambda conn: drop_on(conn, name))


async def retire_market_storage(dsn: str, name: str) -> None:
    await _connected(dsn, lambda conn: retire_on(conn, name))


# ---- readers ----------------------------------------------------------------------------


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _kline(row: Any, seconds: int) -> Kline:
    open_time = _ms(row["bucket"])
    return Kline(
        open_time=open_time,
        close_time=open_time + seconds * 1000 - 1,
        open=format_decimal(row["open"]),
        high=format_decimal(row["high"]),
        low=format_decimal(row["low"]),
        close=format_decimal(row["close"]),
        volume=format_decimal(row["volume"]),
        quote_volume=format_decimal(row["quote_volume"]),
        count=int(row["trades"]),
    )


async def fetch_klines(
    conn: asyncpg.Connection,
    market: str,
    interval: str,
    start: datetime,
    end: datetime,
    limit: int = 500,
) -> list[Kline]:
    """Candles whose bucket starts in [start, end), oldest first, at most `limit`."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM {relation_name(interval, market)} "
        "WHERE bucket >= $1 AND bucket < $2 ORDER BY bucket LIMIT $3",
        start,
        end,
        limit,
    )
    seconds = interval_seconds(interval)
    return [_kline(row, seconds) for row in rows]


async def compute_ticker(
    conn: asyncpg.Connection, market: str, intervals: Sequence[str], now: datetime
) -> Ticker | None:
    """24-hour rolling statistics from the market's shortest candles; None without trades."""
    interval = min(intervals, key=interval_seconds)
    seconds = interval_seconds(interval)
    start = now - timedelta(days=1)
    candles = await fetch_klines(
        conn, market, interval, start, now + timedelta(seconds=1), 1441 * 60
    )
    if not candles:
        return None
    first, last = candles[0], candles[-1]
    open_price, last_price = Decimal(first.open), Decimal(last.close)
    change = last_price - open_price
    percent = (change * 100 / open_price).quantize(Decimal("0.01")) if open_price else Decimal(0)
    return Ticker(
        market=market,
        open_time=first.open_time,
        close_time=min(last.open_time + seconds * 1000 - 1, _ms(now)),
        open=first.open,
        high=format_decimal(max(Decimal(c.high) for c in candles)),
        low=format_decimal(min(Decimal(c.low) for c in candles)),
        last=last.close,
        volume=format_decimal(sum((Decimal(c.volume) for c in candles), Decimal(0))),
        quote_volume=format_decimal(sum((Decimal(c.quote_volume) for c in candles), Decimal(0))),
        count=sum(c.count for c in candles),
        price_change=format_decimal(change),
        price_change_percent=format_decimal(percent),
    )


def utc_from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 1000, tz=UTC) + timedelta(milliseconds=ms % 1000)
