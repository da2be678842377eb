"""Reads of what dbproc stored (orders, trades): the api never writes these tables."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg

from api.models import FillOut, OrderOut, TradeOut, UserFillOut
from xch.money import format_decimal

ORDER_COLUMNS = (
    "market, order_id, client_order_id, side, type, tif, stp, price, qty, quote_qty, "
    "filled_qty, filled_quote, status, reason, created_at, stop_price, list_id, triggered_at, "
    "client_list_id"
)


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


def order_out(row: asyncpg.Record, fills: list[FillOut] | None = None) -> OrderOut:
    return OrderOut(
        order_id=row["order_id"],
        client_order_id=row["client_order_id"] or None,
        market=row["market"],
        side=row["side"],
        type=row["type"],
        tif=row["tif"],
        stp=row["stp"],
        price=_text(row["price"]),
        quantity=_text(row["qty"]),
        quote_quantity=_text(row["quote_qty"]),
        status=row["status"],
        reason=row["reason"] or None,
        filled_quantity=format_decimal(row["filled_qty"]),
        filled_quote=format_decimal(row["filled_quote"]),
        created_at=_ms(row["created_at"]),
        fills=fills or [],
        stop_price=_text(row["stop_price"]),
        list_id=row["list_id"],
        triggered_at=_ms(row["triggered_at"]),
    )


async def order(db: asyncpg.Pool, user: str, market: str, order_id: str) -> OrderOut | None:
    row = await db.fetchrow(
        f"SELECT {ORDER_COLUMNS} FROM orders WHERE market = $1 AND order_id = $2 AND user_id = $3",
        market,
        order_id,
        user,
    )
    if row is None:
        return None
    return order_out(row, await order_fills(db, market, order_id, user))


async def orders(
    db: asyncpg.Pool, user: str, market: str | None, open_only: bool, limit: int
) -> list[OrderOut]:
    where = "user_id = $1 AND ($2::text IS NULL OR market = $2)"
    if open_only:
        where += " AND final_status IS NULL"
    rows = await db.fetch(
        f"SELECT {ORDER_COLUMNS} FROM orders WHERE {where} "
        "ORDER BY created_at DESC NULLS LAST, order_id LIMIT $3",
        user,
        market,
        limit,
    )
    return [order_out(row) for row in rows]


FILL_COLUMNS = (
    "t.trade_id, t.price, t.qty, t.quote_qty, t.ts, t.taker_side, t.maker_fee, t.taker_fee, "
    "t.maker_user, t.taker_user, t.maker_order, t.taker_order, t.market, "
    "m.base_asset, m.quote_asset"
)


def fill_out(row: asyncpg.Record, user: str, order_id: str | None = None) -> FillOut:
    taker = row["taker_order"] == order_id if order_id else row["taker_user"] == user
    buyer = (row["taker_side"] == "buy") == taker
    fee = row["taker_fee"] if taker else row["maker_fee"]
    return FillOut(
        trade_id=row["trade_id"],
        price=format_decimal(row["price"]),
        quantity=format_decimal(row["qty"]),
        quote_quantity=format_decimal(row["quote_qty"]),
        fee=format_decimal(fee),
        fee_asset=row["base_asset"] if buyer else row["quote_asset"],
        liquidity="taker" if taker else "maker",
    )


async def order_fills(db: asyncpg.Pool, market: str, order_id: str, user: str) -> list[FillOut]:
    rows = await db.fetch(
        f"SELECT {FILL_COLUMNS} FROM trades t JOIN markets m ON m.name = t.market "
        "WHERE t.market = $1 AND (t.maker_order = $2 OR t.taker_order = $2) "
        "ORDER BY t.trade_id",
        market,
        order_id,
    )
    return [fill_out(row, user, order_id) for row in rows]


async def user_fills(
    db: asyncpg.Pool, user: str, market: str | None, limit: int
) -> list[UserFillOut]:
    """The user's fills, newest first, each with its market, order and time."""
    rows = await db.fetch(
        f"SELECT * FROM ("
        f" (SELECT {FILL_COLUMNS} FROM trades t JOIN markets m ON m.name = t.market"
        "  WHERE t.maker_user = $1 AND ($2::text IS NULL OR t.market = $2)"
        "  ORDER BY t.ts DESC LIMIT $3)"
        " UNION ALL"
        f" (SELECT {FILL_COLUMNS} FROM trades t JOIN markets m ON m.name = t.market"
        "  WHERE t.taker_user = $1 AND ($2::text IS NULL OR t.market = $2)"
        "  ORDER BY t.ts DESC LIMIT $3)"
        ") f ORDER BY ts DESC, trade_id DESC LIMIT $3",
        user,
        market,
        limit,
    )
    out = []
    for row in rows:
        # A self-trade is both sides: the user took liquidity, report it as the taker.
        fill = fill_out(row, user)
        order_id = row["taker_order"] if fill.liquidity == "taker" else row["maker_order"]
        out.append(
            UserFillOut(
                **fill.model_dump(),
                market=row["market"],
                order_id=order_id,
                time=_ms(row["ts"]) or 0,
            )
        )
    return out


async def trades(db: asyncpg.Pool, market: str, limit: int) -> list[TradeOut]:
    rows = await db.fetch(
        "SELECT trade_id, price, qty, quote_qty, taker_side, ts FROM trades WHERE market = $1 "
        "ORDER BY ts DESC, trade_id DESC LIMIT $2",
        market,
        limit,
    )
    return [
        TradeOut(
            trade_id=row["trade_id"],
            price=format_decimal(row["price"]),
            quantity=format_decimal(row["qty"]),
            quote_quantity=format_decimal(row["quote_qty"]),
            taker_side=row["taker_side"],
            time=_ms(row["ts"]) or 0,
        )
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class StoredList:
    """An OCO list as storage has it: its legs, the one working at the higher price first."""

    list_id: str
    client_list_id: str | None
    above: OrderOut
    below: OrderOut


def _stored_list(
    list_id: str, rows: list[asyncpg.Record], legs: list[OrderOut]
) -> StoredList | None:
    if len(legs) != 2:
        return None
    above, below = sorted(legs, key=_level, reverse=True)
    return StoredList(list_id, rows[0]["client_list_id"], above, below)


def _level(order: OrderOut) -> Decimal:
    level = order.stop_price or order.price
    return Decimal(level) if level is not None else Decimal(0)


async def order_list(db: asyncpg.Pool, user: str, market: str, list_id: str) -> StoredList | None:
    """The user's OCO list, or None if storage has no such list."""
    rows = await db.fetch(
        f"SELECT {ORDER_COLUMNS} FROM orders WHERE market = $1 AND list_id = $2 AND user_id = $3",
        market,
        list_id,
        user,
    )
    legs = [order_out(row) for row in rows]
    for leg in legs:
        leg.fills = await order_fills(db, market, leg.order_id, user)
    return _stored_list(list_id, rows, legs)


async def open_order_lists(
    db: asyncpg.Pool, user: str, market: str | None, limit: int
) -> list[StoredList]:
    """The user's OCO lists with a leg still working, newest first."""
    rows = await db.fetch(
        f"SELECT {ORDER_COLUMNS} FROM orders WHERE (market, list_id) IN ("
        " SELECT DISTINCT market, list_id FROM orders WHERE user_id = $1"
        " AND ($2::text IS NULL OR market = $2) AND final_status IS NULL"
        " AND list_id IS NOT NULL) AND user_id = $1 "
        "ORDER BY created_at DESC NULLS LAST, list_id, order_id LIMIT $3",
        user,
        market,
        2 * limit,
    )
    grouped: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        grouped.setdefault(row["list_id"], []).append(row)
    lists = []
    for list_id, list_rows in grouped.items():
        stored = _stored_list(list_id, list_rows, [order_out(row) for row in list_rows])
        if stored is not None:
            lists.append(stored)
    return lists
