"""Store one read of stream entries in one transaction, exactly once.

Each entry is claimed first in `stored_batches` (INSERT … ON CONFLICT DO NOTHING RETURNING):
only the entries this transaction claimed are written, so a retry after a lost COMMIT reply,
a restart that re-reads unacknowledged entries, or two replicas handed the same entry
store it once. The claimed events go to PostgreSQL as their integers, a handful of values per
event (binary COPY into staging tables), and PostgreSQL derives the rows of trades, candles
and order events from them (INSERT … SELECT); orders are upserted from folds that add up. The
journal's legs of trades and locks are not rows of their own: views derive them from the
trades and order events (migration 0004, docs/storage.md).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter

import asyncpg

from dbproc.epochs import LOCK_SHARED
from dbproc.rows import (
    FUNDS_MARKET,
    JOURNAL_COLUMNS,
    ORDER_EVENT_COLUMNS,
    ORDER_EVENT_FIELDS,
    TRADE_COLUMNS,
    TRADE_FIELDS,
    TRANSFER_COLUMNS,
    OrderFold,
    Row,
    Units,
    funds_rows,
    market_rows,
)
from storage import candles
from storage.klines import record_market
from xch.schemas import Event, Funds


@dataclass(frozen=True)
class Batch:
    """One events-stream entry: an engine batch, events in seq order."""

    events: list[Event]

    @property
    def first_seq(self) -> int:
        return self.events[0].seq

    @property
    def last_seq(self) -> int:
        return self.events[-1].seq


CLAIM = (
    f"WITH epochs_lock AS (SELECT {LOCK_SHARED}) "
    "INSERT INTO stored_batches (market, first_seq, last_seq) "
    "SELECT $1, f, l FROM epochs_lock, unnest($2::bigint[], $3::bigint[]) AS t(f, l) "
    "ON CONFLICT DO NOTHING RETURNING first_seq"
)
"""Claim the entries of a read, holding the market's epochs lock shared until COMMIT, so that
a new epoch is recorded only once no store is in flight (dbproc/epochs.py)."""


def _timestamp(ms: str) -> str:
    """Unix milliseconds as timestamptz, exactly (integer arithmetic)."""
    return f"('epoch'::timestamptz + {ms} * INTERVAL '1 millisecond')"


_TRADE_KINDS = (
    "bigint", "bigint", "bigint", "bigint", "bigint", "bigint", "text", "text", "text", "text",
    "text", "bigint", "bigint", "bigint",
)  # fmt: skip
_ORDER_EVENT_KINDS = (
    "bigint", "text", "text", "text", "text", "text", "int", "bigint", "bigint", "text", "bigint",
)  # fmt: skip
# $1 market, $2 tick, $3 lot, $4 base unit, $5 quote unit; the trades in staged_trades. A
# trade's journal legs are not stored: the view journal_trade_legs derives them from its row.
_BASE_IF_BUYER = "CASE WHEN u.taker_side = 'buy' THEN $4::numeric ELSE $5::numeric END"
_QUOTE_IF_BUYER = "CASE WHEN u.taker_side = 'buy' THEN $5::numeric ELSE $4::numeric END"
STORE_TRADES = (
    f"INSERT INTO trades ({', '.join(TRADE_COLUMNS)}) SELECT $1, u.trade_id, "
    + _timestamp("u.ms")
    + ", u.seq, u.price * $2::numeric, u.qty * $3::numeric, u.quote_qty * $5::numeric, "
    "u.maker_order, u.maker_user, u.taker_order, u.taker_user, u.taker_side, "
    f"u.maker_fee * {_QUOTE_IF_BUYER}, u.taker_fee * {_BASE_IF_BUYER}, "
    "CASE WHEN u.taker_side = 'buy' THEN u.taker_unlocked ELSE 0 END * $5::numeric "
    "FROM staged_trades u"
)
"""A read's trades, from their integers."""

# $1 market, $2 tick, $3 lot, $4 quote unit; the trades in staged_trades.
STORE_CANDLES = (
    "WITH t AS (SELECT $1::text AS market, trade_id, "
    + _timestamp("ms")
    + " AS ts, price * $2::numeric AS price, qty * $3::numeric AS qty, "
    "quote_qty * $4::numeric AS quote_qty FROM staged_trades) "
    + candles.INSERT
    + candles.MINUTES
    + "FROM t GROUP BY market, b ORDER BY b"  # one lock order for concurrent writers
    + candles.ON_CONFLICT
)
"""A read's trades added to their one-minute candles. Last in the transaction: the current
minute's candle is a row every writer updates, and its lock is held until COMMIT."""

# $1 market, $2 tick, $3 base unit, $4 quote unit, $5 base asset, $6 quote asset; the order
# events in staged_order_events. The lock an event moves is its one journal leg, derived by
# the view journal_order_legs.
STORE_ORDER_EVENTS = (
    f"INSERT INTO order_events ({', '.join(ORDER_EVENT_COLUMNS)}) "
    "SELECT $1, seq, order_id, user_id, kind, status, reason, code, "
    + _timestamp("ms")
    + ", last_price * $2::numeric, "
    "CASE WHEN moved = 0 THEN NULL WHEN side = 'buy' THEN $6::text ELSE $5::text END, "
    "CASE WHEN moved = 0 THEN NULL "
    "ELSE moved * CASE WHEN side = 'buy' THEN $4::numeric ELSE $3::numeric END END "
    "FROM staged_order_events"
)
"""A read's order events, each with the lock it moved."""

_FOLD_FIELDS = (
    ("user_id", "text"), ("client_order_id", "text"), ("side", "text"), ("type", "text"),
    ("tif", "text"), ("stp", "text"), ("price", "bigint"), ("qty", "bigint"),
    ("quote_qty", "bigint"), ("filled_qty", "bigint"), ("filled_quote", "bigint"),
    ("base_fee", "bigint"), ("quote_fee", "bigint"), ("final_status", "text"),
    ("reason", "text"), ("created_at", "bigint"), ("updated_at", "bigint"),
    ("stop_price", "bigint"), ("list_id", "text"), ("client_list_id", "text"),
    ("triggered_at", "bigint"),
)  # fmt: skip
"""An OrderFold's fields, as the columns of `staged_orders`."""
# Each column from the fold's integers: $2 tick, $3 lot, $4 base unit, $5 quote unit. What
# this read did not fill adds a plain 0 (as the writer always did: the API shows the scale).
_ORDER_VALUES = (
    ("user_id", "u.user_id"),
    ("client_order_id", "u.client_order_id"),
    ("side", "u.side"),
    ("type", "u.type"),
    ("tif", "u.tif"),
    ("stp", "u.stp"),
    ("price", "u.price * $2::numeric"),
    ("qty", "u.qty * $3::numeric"),
    ("quote_qty", "u.quote_qty * $5::numeric"),
    ("filled_qty", "coalesce(u.filled_qty * $3::numeric, 0)"),
    ("filled_quote", "coalesce(u.filled_quote * $5::numeric, 0)"),
    ("fee", "coalesce(u.base_fee * $4::numeric, 0) + coalesce(u.quote_fee * $5::numeric, 0)"),
    ("final_status", "u.final_status"),
    ("reason", "u.reason"),
    ("created_at", _timestamp("u.created_at")),
    ("updated_at", _timestamp("u.updated_at")),
    ("stop_price", "u.stop_price * $2::numeric"),
    ("list_id", "u.list_id"),
    ("client_list_id", "u.client_list_id"),
    ("triggered_at", _timestamp("u.triggered_at")),
)
_KEPT_FIRST = (
    "client_order_id", "type", "tif", "stp", "price", "qty", "quote_qty", "created_at",
    "stop_price", "list_id", "client_list_id", "triggered_at",
)  # fmt: skip
_ADDED = ("filled_qty", "filled_quote", "fee")

_FOLD_NAMES = [name for name, _ in _FOLD_FIELDS]
STAGE = "; ".join(
    f"CREATE TEMP TABLE IF NOT EXISTS {table} "
    f"({', '.join(f'{name} {kind}' for name, kind in zip(names, kinds, strict=True))}) "
    "ON COMMIT DELETE ROWS"
    for table, names, kinds in (
        ("staged_trades", TRADE_FIELDS, _TRADE_KINDS),
        ("staged_order_events", ORDER_EVENT_FIELDS, _ORDER_EVENT_KINDS),
        ("staged_orders", ["order_id", *_FOLD_NAMES], ["text", *(k for _, k in _FOLD_FIELDS)]),
    )
)
"""The connection's staging tables: a read's events and order folds are copied there (binary
COPY of integers and text), derived into the stored tables, and emptied at COMMIT."""
UPSERT_ORDERS = (
    "INSERT INTO orders AS o (market, order_id, "
    + ", ".join(name for name, _ in _ORDER_VALUES)
    + ") SELECT $1, u.order_id, "
    + ", ".join(value for _, value in _ORDER_VALUES)
    # Ordered, so that replicas upserting the same orders lock them in the same order.
    + ' FROM staged_orders u ORDER BY u.order_id COLLATE "C"'
    + " ON CONFLICT (market, order_id) DO UPDATE SET "
    + ", ".join(f"{name} = coalesce(o.{name}, excluded.{name})" for name in _KEPT_FIRST)
    + ", "
    + ", ".join(f"{name} = o.{name} + excluded.{name}" for name in _ADDED)
    + ", final_status = coalesce(excluded.final_status, o.final_status)"
    ", reason = coalesce(excluded.reason, o.reason)"
    ", updated_at = greatest(o.updated_at, excluded.updated_at)"
)


async def _claim(
    conn: asyncpg.Connection, market: str, spans: Sequence[tuple[int, int]]
) -> set[int]:
    claimed = await conn.fetch(
        CLAIM, market, [first for first, _ in spans], [last for _, last in spans]
    )
    return {row[0] for row in claimed}


async def _copy(
    conn: asyncpg.Connection, table: str, columns: Sequence[str], rows: list[tuple[object, ...]]
) -> None:
    if rows:
        await conn.copy_records_to_table(table, records=rows, columns=list(columns))


async def _store_trades(
    conn: asyncpg.Connection, market: str, units: Units, trades: list[Row]
) -> None:
    if not trades:
        return
    await record_market(conn, units.market)
    await conn.copy_records_to_table("staged_trades", records=trades)
    await conn.execute(
        STORE_TRADES, market, units.tick, units.lot, units.base_unit, units.quote_unit
    )


async def _add_candles(conn: asyncpg.Connection, market: str, units: Units) -> None:
    await conn.execute(STORE_CANDLES, market, units.tick, units.lot, units.quote_unit)


async def _store_order_events(
    conn: asyncpg.Connection, market: str, units: Units, events: list[Row]
) -> None:
    if not events:
        return
    rules = units.rules
    await conn.copy_records_to_table("staged_order_events", records=events)
    await conn.execute(
        STORE_ORDER_EVENTS, market, units.tick, units.base_unit, units.quote_unit,
        rules.base, rules.quote,
    )  # fmt: skip


async def _upsert_orders(
    conn: asyncpg.Connection, market: str, units: Units, folds: dict[str, OrderFold]
) -> None:
    if not folds:
        return
    fold_values = attrgetter(*_FOLD_NAMES)
    records = [(order_id, *fold_values(fold)) for order_id, fold in folds.items()]
    await conn.copy_records_to_table("staged_orders", records=records)
    await conn.execute(
        UPSERT_ORDERS, market, units.tick, units.lot, units.base_unit, units.quote_unit
    )


async def store_market_batches(
    conn: asyncpg.Connection, market: str, units: Units, batches: Sequence[Batch]
) -> int:
    """Store the batches not stored yet; returns how many trades this added."""
    batches = [batch for batch in batches if batch.events]
    if not batches:
        return 0
    async with conn.transaction():
        claimed = await _claim(conn, market, [(b.first_seq, b.last_seq) for b in batches])
        rows = market_rows(e for b in batches if b.first_seq in claimed for e in b.events)
        if rows.trades or rows.order_events or rows.orders:
            await conn.execute(STAGE)
        # Rows no other writer touches first; then the ones concurrent writers share (an
        # order filled across reads, the current minute's candle), each in one lock order.
        await _store_trades(conn, market, units, rows.trades)
        await _store_order_events(conn, market, units, rows.order_events)
        await _upsert_orders(conn, market, units, rows.orders)
        if rows.trades:
            await _add_candles(conn, market, units)
    return len(rows.trades)


async def store_funds(
    conn: asyncpg.Connection, movements: Sequence[tuple[Funds, str, Decimal]]
) -> None:
    """Store deposits and withdrawals (each with its reference and minor unit) once."""
    if not movements:
        return
    async with conn.transaction():
        claimed = await _claim(conn, FUNDS_MARKET, [(f.seq, f.seq) for f, _, _ in movements])
        rows = funds_rows(m for m in movements if m[0].seq in claimed)
        await _copy(conn, "transfers", TRANSFER_COLUMNS, rows.transfers)
        await _copy(conn, "journal_stored", JOURNAL_COLUMNS, rows.journal)
