"""Reads of stored orders and trades with Binance's filters (time ranges, ids, ascending
order); rows become native models through api.queries, then Binance JSON."""

from datetime import datetime
from decimal import Decimal

import asyncpg

from api.models import FillOut, OrderOut
from api.queries import FILL_COLUMNS, ORDER_COLUMNS, fill_out, order_out


async def order_by_client_id(
    db: asyncpg.Pool, user: str, market: str, client_order_id: str
) -> OrderOut | None:
    row = await db.fetchrow(
        f"SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND market = $2 "
        "AND client_order_id = $3 ORDER BY created_at DESC NULLS LAST LIMIT 1",
        user,
        market,
        client_order_id,
    )
    return None if row is None else order_out(row)


async def orders(
    db: asyncpg.Pool,
    user: str,
    market: str | None,
    *,
    open_only: bool,
    since_order: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 1000,
) -> list[OrderOut]:
    """Oldest first, as Binance lists them; `since_order`: that order and later ones."""
    rows = await db.fetch(
        f"SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 "
        "AND ($2::text IS NULL OR market = $2) "
        "AND (NOT $3 OR final_status IS NULL) "
        "AND ($4::text IS NULL OR created_at >= "
        "     (SELECT created_at FROM orders WHERE market = $2 AND order_id = $4)) "
        "AND ($5::timestamptz IS NULL OR created_at >= $5) "
        "AND ($6::timestamptz IS NULL OR created_at <= $6) "
        "ORDER BY created_at, order_id LIMIT $7",
        user,
        market,
        open_only,
        since_order,
        start,
        end,
        limit,
    )
    return [order_out(row) for row in rows]


async def user_trades(
    db: asyncpg.Pool,
    user: str,
    market: str,
    *,
    order_id: str | None,
    from_id: int | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[tuple[FillOut, str, datetime, str]]:
    """The user's fills in `market`, oldest first: (fill, order id, time, taker side)."""
    rows = await db.fetch(
        f"SELECT {FILL_COLUMNS} FROM trades t JOIN markets m ON m.name = t.market "
        "WHERE t.market = $2 AND (t.maker_user = $1 OR t.taker_user = $1) "
        "AND ($3::text IS NULL OR t.maker_order = $3 OR t.taker_order = $3) "
        "AND ($4::bigint IS NULL OR t.trade_id >= $4) "
        "AND ($5::timestamptz IS NULL OR t.ts >= $5) "
        "AND ($6::timestamptz IS NULL OR t.ts <= $6) "
        "ORDER BY t.trade_id LIMIT $7",
        user,
        market,
        order_id,
        from_id,
        start,
        end,
        limit,
    )
    out = []
    for row in rows:
        fill = fill_out(row, user, order_id)
        own = row["taker_order"] if fill.liquidity == "taker" else row["maker_order"]
        out.append((fill, own, row["ts"], row["taker_side"]))
    return out


async def last_trade(db: asyncpg.Pool, market: str) -> tuple[Decimal, Decimal, datetime] | None:
    row = await db.fetchrow(
        "SELECT price, qty, ts FROM trades WHERE market = $1 ORDER BY trade_id DESC LIMIT 1",
        market,
    )
    return None if row is None else (row["price"], row["qty"], row["ts"])


async def trade_ids(db: asyncpg.Pool, market: str, since: datetime) -> tuple[int, int]:
    """First and last trade ids since `since` (-1, -1 without trades)."""
    row = await db.fetchrow(
        "SELECT min(trade_id) AS first, max(trade_id) AS last FROM trades "
        "WHERE market = $1 AND ts >= $2",
        market,
        since,
    )
    if row is None or row["first"] is None:
        return -1, -1
    return int(row["first"]), int(row["last"])


async def average_price(
    db: asyncpg.Pool, market: str, since: datetime
) -> tuple[Decimal, Decimal, datetime | None]:
    """(quote volume, base volume, last trade time) of the trades since `since`."""
    row = await db.fetchrow(
        "SELECT coalesce(sum(quote_qty), 0) AS quote, coalesce(sum(qty), 0) AS base, "
        "max(ts) AS last FROM trades WHERE market = $1 AND ts >= $2",
        market,
        since,
    )
    assert row is not None
    return row["quote"], row["base"], row["last"]


async def market_trades(
    db: asyncpg.Pool,
    market: str,
    from_id: int | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[asyncpg.Record]:
    """The market's trades from `from_id` or `start` on (the first `limit`), else the last
    `limit` up to `end` (or now); oldest first either way."""
    forward = from_id is not None or start is not None
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT trade_id, price, qty, taker_side, ts FROM trades WHERE market = $1 "
        "AND ($2::bigint IS NULL OR trade_id >= $2) "
        "AND ($3::timestamptz IS NULL OR ts >= $3) AND ($4::timestamptz IS NULL OR ts <= $4) "
        f"ORDER BY trade_id {'ASC' if forward else 'DESC'} LIMIT $5",
        market,
        from_id,
        start,
        end,
        limit,
    )
    return rows if forward else rows[::-1]
