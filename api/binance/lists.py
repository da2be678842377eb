"""OCO order lists as Binance shows them. A list placed here is numbered by one counter for
all markets (`xch.keys.LIST_SEQ`): its engine id is `{market}.{n:016x}` and its
`orderListId` n, so `GET /orderList`, which names no symbol, finds it. Its record (market,
legs, `listClientOrderId`) is in the user's `xch.keys.order_lists` hash; the legs' states
are the stored orders'."""

from typing import Any

import asyncpg
import redis.asyncio

from api.binance import render
from api.binance.errors import BinanceError
from api.binance.symbols import number_of
from api.models import OrderOut
from api.queries import ORDER_COLUMNS, order_out
from xch import keys
from xch.market import MarketRules
from xch.order_lists import (
    CLIENT_FIELD_PREFIX,
    MAX_LIST_NUMBER,
    ListRecord,
    binance_list_id,
    client_field,
    decode_list,
    encode_list,
    list_number,
)
from xch.wire import as_text

FINAL = {"FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH", "REJECTED"}


async def next_list_id(client: redis.asyncio.Redis, market: str) -> str:
    number = int(await client.incr(keys.LIST_SEQ))
    if number > MAX_LIST_NUMBER:
        raise BinanceError(503, -1000, "Order list ids exhausted.")
    return binance_list_id(market, number)


async def record(client: redis.asyncio.Redis, user: str, listed: ListRecord) -> bool:
    """Keep the list's record before it is enqueued; False (nothing written) if the user
    already has a list with its `listClientOrderId`."""
    number = str(list_number(listed.list_id))
    async with client.pipeline(transaction=True) as pipe:
        pipe.hsetnx(keys.order_lists(user), client_field(listed.client_list_id), number)
        pipe.hset(keys.order_lists(user), number, encode_list(listed))
        fresh, _ = await pipe.execute()
    if not fresh:
        await client.hdel(keys.order_lists(user), number)
    return bool(fresh)


async def forget(client: redis.asyncio.Redis, user: str, listed: ListRecord) -> None:
    """A list the engine refused (or that never reached it) is not kept."""
    await client.hdel(
        keys.order_lists(user),
        str(list_number(listed.list_id)),
        client_field(listed.client_list_id),
    )


async def by_number(client: redis.asyncio.Redis, user: str, number: int) -> ListRecord | None:
    raw = await client.hget(keys.order_lists(user), str(number))
    return None if raw is None else decode_list(raw)


async def by_client_id(
    client: redis.asyncio.Redis, user: str, client_list_id: str
) -> ListRecord | None:
    number = await client.hget(keys.order_lists(user), client_field(client_list_id))
    return None if number is None else await by_number(client, user, int(number))


async def every_list(client: redis.asyncio.Redis, user: str) -> list[ListRecord]:
    """The user's lists, oldest first."""
    raw = await client.hgetall(keys.order_lists(user))
    lists = [
        decode_list(value)
        for name, value in raw.items()
        if not as_text(name).startswith(CLIENT_FIELD_PREFIX)
    ]
    return sorted(lists, key=lambda listed: list_number(listed.list_id))


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
