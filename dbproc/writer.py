"""Store one read of stream entries in one transaction, exactly once.

Each entry is claimed first in `stored_batches` (INSERT … ON CONFLICT DO NOTHING RETURNING):
only the entries this transaction claimed are written, so a retry after a lost COMMIT reply,
a restart that re-reads unacknowledged entries, or two replicas handed the same entry
store it once. The claimed events go to PostgreSQL as arrays of their integers, a handful of
values per event, and PostgreSQL derives the rows of trades, candles, order events and the
journal from them (INSERT … SELECT over unnest); orders are upserted from folds that add up.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter

import asyncpg

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
from xch.schemas import FEE_ACCOUNT, Event, Funds


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
    "INSERT INTO stored_batches (market, first_seq, last_seq) "
    "SELECT $1, f, l FROM unnest($2::bigint[], $3::bigint[]) AS t(f, l) "
    "ON CONFLICT DO NOTHING RETURNING first_seq"
)


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
# $1 market, $2 tick, $3 lot, $4 base unit, $5 quote unit, $6 base asset, $7 quote asset,
# $8 base minor units per lot; the trades in staged_trades.
_BASE_IF_BUYER = "CASE WHEN u.taker_side = 'buy' THEN $4::numeric ELSE $5::numeric END"
_QUOTE_IF_BUYER = "CASE WHEN u.taker_side = 'buy' THEN $5::numeric ELSE $4::numeric END"
_UNIT_OF_ASSET = "CASE WHEN c.asset = $6::text THEN $4::numeric ELSE $5::numeric END"
STORE_TRADES = (
    "WITH u AS (SELECT * FROM staged_trades), "
    "t AS (SELECT $1::text AS market, u.trade_id, "
    + _timestamp("u.ms")
    + " AS ts, u.seq, u.price * $2::numeric AS price, u.qty * $3::numeric AS qty, "
    "u.quote_qty * $5::numeric AS quote_qty, u.maker_order, u.maker_user, u.taker_order, "
    f"u.taker_user, u.taker_side, u.maker_fee * {_QUOTE_IF_BUYER} AS maker_fee, "
    f"u.taker_fee * {_BASE_IF_BUYER} AS taker_fee FROM u), "
    f"stored AS (INSERT INTO trades ({', '.join(TRADE_COLUMNS)}) "
    f"SELECT {', '.join(TRADE_COLUMNS)} FROM t), "
    # Each trade's balance moves, as ledger.reference._trade_moves makes them: one leg per
    # user and asset (a self-trade's buyer and seller cells are one), numbered in cell order,
    # the ones that move nothing left out. Computed row by row, without grouping or sorting;
    # no user is the fee account, so only a self-trade merges cells.
    f"legs AS (INSERT INTO journal ({', '.join(JOURNAL_COLUMNS)}) "
    "SELECT $1, u.seq, c.leg, 'trade', u.trade_id::text, c.who, c.asset, "
    f"c.free * {_UNIT_OF_ASSET}, c.locked * {_UNIT_OF_ASSET}, "
    + _timestamp("u.ms")
    + " FROM u CROSS JOIN LATERAL (SELECT u.qty * $8::bigint AS base, "
    "CASE WHEN u.taker_side = 'buy' THEN u.taker_user ELSE u.maker_user END AS buyer, "
    "CASE WHEN u.taker_side = 'buy' THEN u.taker_fee ELSE u.maker_fee END AS buyer_fee, "
    "CASE WHEN u.taker_side = 'buy' THEN u.taker_unlocked ELSE 0 END AS refund, "
    "CASE WHEN u.taker_side = 'buy' THEN u.maker_user ELSE u.taker_user END AS seller, "
    "CASE WHEN u.taker_side = 'buy' THEN u.maker_fee ELSE u.taker_fee END AS seller_fee, "
    "u.maker_user = u.taker_user AS own) b "
    "CROSS JOIN LATERAL (SELECT "
    "b.refund + CASE WHEN b.own THEN u.quote_qty - b.seller_fee ELSE 0 END AS f1, "
    "-(u.quote_qty + b.refund) AS l1, b.base - b.buyer_fee AS f2, "
    "CASE WHEN b.own THEN -b.base ELSE 0 END AS l2, "
    "CASE WHEN b.own THEN 0 ELSE -b.base END AS l3, "
    "CASE WHEN b.own THEN 0 ELSE u.quote_qty - b.seller_fee END AS f4) m "
    "CROSS JOIN LATERAL (SELECT (m.f1 <> 0 OR m.l1 <> 0)::int AS n1, "
    "(m.f2 <> 0 OR m.l2 <> 0)::int AS n2, (m.l3 <> 0)::int AS n3, (m.f4 <> 0)::int AS n4, "
    "(b.buyer_fee <> 0)::int AS n5) n "
    "CROSS JOIN LATERAL (VALUES "
    "(0, b.buyer, $7::text, m.f1, m.l1), "
    "(n.n1, b.buyer, $6::text, m.f2, m.l2), "
    "(n.n1 + n.n2, b.seller, $6::text, 0, m.l3), "
    "(n.n1 + n.n2 + n.n3, b.seller, $7::text, m.f4, 0), "
    f"(n.n1 + n.n2 + n.n3 + n.n4, '{FEE_ACCOUNT}', $6::text, b.buyer_fee, 0), "
    f"(n.n1 + n.n2 + n.n3 + n.n4 + n.n5, '{FEE_ACCOUNT}', $7::text, b.seller_fee, 0)) "
    "AS c(leg, who, asset, free, locked) WHERE c.free <> 0 OR c.locked <> 0) "
    + candles.INSERT
    + candles.MINUTES
    + "FROM t GROUP BY market, b ORDER BY b"  # one lock order for concurrent writers
    + candles.ON_CONFLICT
)
"""A read's trades, their journal legs and their candles, from the trades' integers."""

# $1 market, $2 tick, $3 base unit, $4 quote unit, $5 base asset, $6 quote asset; the order
# events in staged_order_events.
STORE_ORDER_EVENTS = (
    "WITH u AS (SELECT * FROM staged_order_events), "
    f"stored AS (INSERT INTO order_events ({', '.join(ORDER_EVENT_COLUMNS)}) "
    "SELECT $1, seq, order_id, user_id, kind, status, reason, code, "
    + _timestamp("ms")
    + ", last_price * $2::numeric FROM u) "
    f"INSERT INTO journal ({', '.join(JOURNAL_COLUMNS)}) "
    "SELECT $1, seq, 0, kind, order_id, user_id, "
    "CASE WHEN side = 'buy' THEN $6::text ELSE $5::text END, "
    "moved * CASE WHEN side = 'buy' THEN $4::numeric ELSE $3::numeric END, "
    "-moved * CASE WHEN side = 'buy' THEN $4::numeric ELSE $3::numeric END, "
    + _timestamp("ms")
    + " FROM u WHERE moved <> 0"
)
"""A read's order events, and the one journal leg of each lock taken or released."""

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
    rules = units.rules
    await conn.copy_records_to_table("staged_trades", records=trades)
    await conn.execute(
        STORE_TRADES, market, units.tick, units.lot, units.base_unit, units.quote_unit,
        rules.base, rules.quote, rules.base_per_lot,
    )  # fmt: skip


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
        await _store_trades(conn, market, units, rows.trades)
        await _store_order_events(conn, market, units, rows.order_events)
        await _upsert_orders(conn, market, units, rows.orders)
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
        await _copy(conn, "journal", JOURNAL_COLUMNS, rows.journal)
