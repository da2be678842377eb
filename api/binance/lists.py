"""OCO order lists as Binance shows them. A list placed here is numbered by one counter for
all markets (`xch.keys.LIST_SEQ`): its engine id is `{market}.{n:016x}` and its
`orderListId` n, so `GET /orderList`, which names no symbol, finds it. Its record (market,
legs, `listClientOrderId`) is kept in Redis for `list_record_ttl_seconds`, and at most
`RECENT_LISTS` per user (`xch.keys.order_list`, `recent_order_lists`): long enough for dbproc
to store the legs, after which PostgreSQL's orders (`list_id`, `client_list_id`) tell the same.
So what a user's lists take in Redis is bounded, and no request reads more than a bounded
number of them; the legs' states are the stored orders'."""

from collections.abc import Iterable
from typing import Any

import asyncpg
import redis.asyncio

from api.binance import render
from api.binance.errors import BinanceError
from api.binance.symbols import number_of
from api.models import OrderOut
from api.queries import ORDER_COLUMNS, order_out
from ledger.numbers import LIST_NUMBERS_PER_MS
from ledger.scripts import Scripts
from xch import keys
from xch.market import MarketRules
from xch.order_lists import (
    LIST_HEX_DIGITS,
    LIST_NUMBER_BASE,
    MAX_LIST_NUMBER,
    ListRecord,
    binance_list_id,
    decode_list,
    encode_list,
    list_number,
)

FINAL = {"FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH", "REJECTED"}
RECENT_LISTS = 1000
"""Records of a user's lists kept in Redis at most: the newest."""
MAX_OPEN_LISTS = 1000
"""Open lists `GET /openOrderList` answers at most."""
_BINANCE_LIST = f"[.][0-9a-f]{{{LIST_HEX_DIGITS}}}$"
"""A list id these routes gave out (the native api's have 16 hex digits)."""


async def next_list_id(scripts: Scripts, market: str) -> str:
    """A new list id of `market`, numbered by `xch.keys.LIST_SEQ` (never repeated by a
    restored Redis: ledger.numbers)."""
    number = int(await scripts.number(keys=[keys.LIST_SEQ], args=[LIST_NUMBERS_PER_MS]))
    if number > MAX_LIST_NUMBER:
        raise BinanceError(503, -1000, "Order list ids exhausted.")
    return binance_list_id(market, number)


async def record(
    client: redis.asyncio.Redis, user: str, listed: ListRecord, ttl_seconds: int
) -> bool:
    """Keep the list's record before it is enqueued; False (nothing written) if the user
    has a list with its `listClientOrderId` in Redis already."""
    number = list_number(listed.list_id)
    named = keys.order_list_client(user, listed.client_list_id)
    if not await client.set(named, number, nx=True, ex=ttl_seconds):
        return False
    recent = keys.recent_order_lists(user)
    async with client.pipeline(transaction=True) as pipe:
        pipe.set(keys.order_list(user, number), encode_list(listed), ex=ttl_seconds)
        pipe.zadd(recent, {str(number): listed.ts})
        pipe.zremrangebyscore(recent, "-inf", f"({listed.ts - ttl_seconds * 1000}")
        pipe.zremrangebyrank(recent, 0, -RECENT_LISTS - 1)
        pipe.expire(recent, ttl_seconds)
        await pipe.execute()
    return True


async def forget(client: redis.asyncio.Redis, user: str, listed: ListRecord) -> None:
    """A list the engine refused (or that never reached it) is not kept."""
    number = list_number(listed.list_id)
    async with client.pipeline(transaction=True) as pipe:
        pipe.delete(keys.order_list(user, number))
        pipe.delete(keys.order_list_client(user, listed.client_list_id))
        pipe.zrem(keys.recent_order_lists(user), str(number))
        await pipe.execute()


async def by_number(
    client: redis.asyncio.Redis, db: asyncpg.Pool, markets: Iterable[str], user: str, number: int
) -> ListRecord | None:
    """The user's list `number`, from Redis or else storage (`markets`: where it may be)."""
    if not 0 <= number <= MAX_LIST_NUMBER:
        return None
    raw = await client.get(keys.order_list(user, number))
    if raw is not None:
        return decode_list(raw)
    ids = [binance_list_id(market, number) for market in markets]
    found = await _stored(db, user, "list_id = ANY($2::text[])", ids)
    return found[0] if found else None


async def by_client_id(
    client: redis.asyncio.Redis,
    db: asyncpg.Pool,
    markets: Iterable[str],
    user: str,
    client_list_id: str,
) -> ListRecord | None:
    number = await client.get(keys.order_list_client(user, client_list_id))
    if number is not None:
        return await by_number(client, db, markets, user, int(number))
    found = await _stored(db, user, "client_list_id = $2", client_list_id)
    return found[0] if found else None


async def open_lists(client: redis.asyncio.Redis, db: asyncpg.Pool, user: str) -> list[ListRecord]:
    """The user's lists that may still be working, oldest first: those storage has with a
    working leg, and the recent ones whose legs it does not have yet (at most
    MAX_OPEN_LISTS + RECENT_LISTS)."""
    stored = await _stored(
        db,
        user,
        "list_id IN (SELECT list_id FROM orders WHERE user_id = $1 AND final_status IS NULL"
        f" AND list_id ~ '{_BINANCE_LIST}' ORDER BY list_id DESC LIMIT $2)",
        MAX_OPEN_LISTS,
    )
    return _merged(stored, await recent(client, user))


async def all_lists(
    client: redis.asyncio.Redis,
    db: asyncpg.Pool,
    user: str,
    from_id: int | None,
    limit: int,
) -> list[ListRecord]:
    """The user's lists from `from_id` on (or the newest), oldest first, at most `limit`
    read from storage plus the recent ones."""
    if from_id is None:
        where, order = "TRUE", "DESC"
        bound: Any = ""
    else:
        where, order = "split_part(list_id, '.', 2) >= $3", "ASC"
        bound = f"{LIST_NUMBER_BASE + max(from_id, 0):0{LIST_HEX_DIGITS}x}"
    arguments: list[Any] = [limit] + ([bound] if from_id is not None else [])
    stored = await _stored(
        db,
        user,
        "list_id IN (SELECT DISTINCT list_id FROM orders WHERE user_id = $1"
        f" AND list_id ~ '{_BINANCE_LIST}' AND {where}"
        f" ORDER BY list_id {order} LIMIT $2)",
        *arguments,
    )
    return _merged(stored, await recent(client, user))


async def recent(client: redis.asyncio.Redis, user: str) -> list[ListRecord]:
    """The records Redis still has of the user's newest lists."""
    numbers: Any = await client.zrange(keys.recent_order_lists(user), 0, -1)
    if not numbers:
        return []
    raw = await client.mget([keys.order_list(user, int(number)) for number in numbers])
    return [decode_list(value) for value in raw if value is not None]


def _merged(stored: list[ListRecord], newer: list[ListRecord]) -> list[ListRecord]:
    """Both, each list once (its Redis record first: the time it was placed), oldest first."""
    by_id = {listed.list_id: listed for listed in stored} | {
        listed.list_id: listed for listed in newer
    }
    return sorted(by_id.values(), key=lambda listed: list_number(listed.list_id))


async def _stored(db: asyncpg.Pool, user: str, where: str, *arguments: Any) -> list[ListRecord]:
    """The user's lists as storage has them: the legs of these routes' lists where `where`
    ($1 is the user, then `arguments`), oldest first."""
    rows = await db.fetch(
        "SELECT market, list_id, client_list_id, order_id, client_order_id, created_at "
        f"FROM orders WHERE user_id = $1 AND list_id ~ '{_BINANCE_LIST}' AND {where} "
        "ORDER BY list_id, order_id",
        user,
        *arguments,
    )
    legs: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        legs.setdefault(row["list_id"], []).append(row)
    return [_record(list_rows) for list_rows in legs.values()]


def _record(legs: list[asyncpg.Record]) -> ListRecord:
    """A list's record from its stored legs (above first: its leg id ends in 0)."""
    first = legs[0]
    return ListRecord(
        first["market"],
        first["list_id"],
        first["client_list_id"] or "",
        [(row["order_id"], row["client_order_id"] or "") for row in legs],
        int(first["created_at"].timestamp() * 1000),
    )


async def stored_legs(db: asyncpg.Pool, user: str, lists: list[ListRecord]) -> dict[str, OrderOut]:
    """The stored orders of these lists' legs, by order id (a leg dbproc has not stored yet
    is missing)."""
    ids = [order_id for listed in lists for order_id, _ in listed.orders]
    if not ids:
        return {}
    rows = await db.fetch(
        f"SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 AND order_id = ANY($2::text[])",
        user,
        ids,
    )
    return {row["order_id"]: order_out(row) for row in rows}


def is_done(listed: ListRecord, legs: dict[str, OrderOut]) -> bool:
    """Whether every leg has ended (a leg not stored yet is still working)."""
    return all(
        order_id in legs and render.order_status(legs[order_id]) in FINAL
        for order_id, _ in listed.orders
    )


def list_status(
    symbol: str, listed: ListRecord, done: bool, time: int | None = None
) -> dict[str, Any]:
    """Binance's list object (`GET /orderList` and the first fields of the other answers)."""
    return {
        "orderListId": list_number(listed.list_id),
        "contingencyType": "OCO",
        "listStatusType": "ALL_DONE" if done else "EXEC_STARTED",
        "listOrderStatus": "ALL_DONE" if done else "EXECUTING",
        "listClientOrderId": listed.client_list_id,
        "transactionTime": listed.ts if time is None else time,
        "symbol": symbol,
        "orders": [
            {"symbol": symbol, "orderId": number_of(order_id), "clientOrderId": client_id}
            for order_id, client_id in listed.orders
        ],
    }


def order_report(rules: MarketRules, symbol: str, order: OrderOut, time: int) -> dict[str, Any]:
    """One leg in `orderReports`."""
    out = render.order_result(rules, symbol, order)
    out["transactTime"] = time
    out["workingTime"] = time if render.is_working(order) else -1
    return out
