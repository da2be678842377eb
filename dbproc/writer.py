"""Store one read of stream entries in one transaction, exactly once.

Each entry is claimed first in `stored_batches` (INSERT … ON CONFLICT DO NOTHING RETURNING):
only the entries this transaction claimed are written, so a retry after a lost COMMIT reply,
a restart that re-reads unacknowledged entries, or two replicas handed the same entry
store it once. The rows then go in with COPY, and orders are upserted from folds that add up.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

import asyncpg

from dbproc.rows import (
    FUNDS_MARKET,
    JOURNAL_COLUMNS,
    ORDER_EVENT_COLUMNS,
    TRADE_COLUMNS,
    TRANSFER_COLUMNS,
    OrderFold,
    Units,
    funds_rows,
    market_rows,
)
from storage import candles
from storage.candles import CandleTrade
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


def trade_candle(row: tuple[object, ...]) -> CandleTrade:
    """What candles need of a trades row (TRADE_COLUMNS order)."""
    return cast(CandleTrade, (row[1], row[2], row[4], row[5], row[6]))


CLAIM = (
    "INSERT INTO stored_batches (market, first_seq, last_seq) "
    "SELECT $1, f, l FROM unnest($2::bigint[], $3::bigint[]) AS t(f, l) "
    "ON CONFLICT DO NOTHING RETURNING first_seq"
)

_ORDER_FIELDS = (
    ("user_id", "text"), ("client_order_id", "text"), ("side", "text"), ("type", "text"),
    ("tif", "text"), ("stp", "text"), ("price", "numeric"), ("qty", "numeric"),
    ("quote_qty", "numeric"), ("filled_qty", "numeric"), ("filled_quote", "numeric"),
    ("fee", "numeric"), ("final_status", "text"), ("reason", "text"),
    ("created_at", "timestamptz"), ("updated_at", "timestamptz"), ("stop_price", "numeric"),
    ("list_id", "text"), ("client_list_id", "text"), ("triggered_at", "timestamptz"),
)  # fmt: skip
_KEPT_FIRST = (
    "client_order_id", "type", "tif", "stp", "price", "qty", "quote_qty", "created_at",
    "stop_price", "list_id", "client_list_id", "triggered_at",
)  # fmt: skip
_ADDED = ("filled_qty", "filled_quote", "fee")

UPSERT_ORDERS = (
    "INSERT INTO orders AS o (market, order_id, "
    + ", ".join(name for name, _ in _ORDER_FIELDS)
    + ") SELECT $1, * FROM unnest($2::text[], "
    + ", ".join(f"${n}::{kind}[]" for n, (_, kind) in enumerate(_ORDER_FIELDS, start=3))
    + ") ON CONFLICT (market, order_id) DO UPDATE SET "
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


async def _upsert_orders(
    conn: asyncpg.Connection, market: str, folds: dict[str, OrderFold]
) -> None:
    if not folds:
        return
    # Sorted, so that replicas upserting the same orders lock them in the same order.
    ordered = sorted(folds.items())
    columns = [[getattr(fold, name) for _, fold in ordered] for name, _ in _ORDER_FIELDS]
    await conn.execute(UPSERT_ORDERS, market, [order_id for order_id, _ in ordered], *columns)


async def store_market_batches(
    conn: asyncpg.Connection, market: str, units: Units, batches: Sequence[Batch]
) -> int:
    """Store the batches not stored yet; returns how many trades this added."""
    batches = [batch for batch in batches if batch.events]
    if not batches:
        return 0
    async with conn.transaction():
        claimed = await _claim(conn, market, [(b.first_seq, b.last_seq) for b in batches])
        events = [e for b in batches if b.first_seq in claimed for e in b.events]
        rows = market_rows(units, events)
        await _copy(conn, "trades", TRADE_COLUMNS, rows.trades)
        await candles.add_trades(conn, market, [trade_candle(row) for row in rows.trades])
        await _copy(conn, "order_events", ORDER_EVENT_COLUMNS, rows.order_events)
        await _copy(conn, "journal", JOURNAL_COLUMNS, rows.journal)
        await _upsert_orders(conn, market, rows.orders)
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
