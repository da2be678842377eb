"""What a market's engine has done, for its Market's status (and `exchange status`): how many
commands wait in its input, and when it last matched a trade."""

import contextlib
from datetime import datetime
from typing import Any

import asyncpg
import redis.asyncio
import redis.exceptions

from xch import keys
from xch.wire import as_text

LAG_CAP = 1000
"""Input entries counted at most: enough to tell a slow engine from a stopped one."""


async def input_lag(client: redis.asyncio.Redis, name: str) -> int:
    """Input entries the engine has not applied yet (at most LAG_CAP counted)."""
    applied = await client.get(keys.market_applied(name))
    start = f"({as_text(applied)}" if applied else "-"
    return len(await client.xrange(keys.market_input(name), start, "+", count=LAG_CAP) or [])


async def last_trade(conn: asyncpg.Connection, name: str) -> asyncpg.Record | None:
    """The market's newest trade (price, ts): one primary-key lookup, not a pass over trades."""
    return await conn.fetchrow(
        "SELECT price, ts FROM trades WHERE market = $1 ORDER BY trade_id DESC LIMIT 1", name
    )


async def engine_report(client: redis.asyncio.Redis, dsn: str, name: str) -> dict[str, Any]:
    """`inputLag` and `lastTradeTime` (None: no trade yet) for the status; a store that does
    not answer leaves its field out (the last value stays)."""
    report: dict[str, Any] = {}
    with contextlib.suppress(redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        report["inputLag"] = await input_lag(client, name)
    try:
        conn = await asyncpg.connect(dsn)
        try:
            row = await last_trade(conn, name)
        finally:
            await conn.close()
        report["lastTradeTime"] = None if row is None else _timestamp(row["ts"])
    except (OSError, asyncpg.PostgresError):
        pass
    return report


def _timestamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")
