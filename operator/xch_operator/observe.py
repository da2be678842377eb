"""What a market's engine has done, for its Market's status (and `kubectl exchange`): how
many commands wait in its input, when it last matched a trade, what its newest snapshot
covers, which engine holds its lease and the trading state that engine has committed. Read
from Redis and PostgreSQL only: the engine's own keys (xch/keys.py), never its Pods."""

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio
import redis.exceptions

from storage.klines import missing_on
from xch import keys
from xch.market import Market
from xch.wire import as_text

LAG_CAP = 1000
"""Input entries counted at most: enough to tell a slow engine from a stopped one."""
POOL_SIZE = 2
"""PostgreSQL connections the operator keeps for its reports: reconciles of many Markets
share them instead of each opening one."""
APPLICATION_NAME = "xch-operator"
"""How the report pool's connections show in pg_stat_activity."""
SNAPSHOT_HEAD = 64
"""Bytes of a snapshot read: its head holds the input id (the book after it is not read)."""
_INPUT_ID_KEY = b"\xa8input_id"
"""The msgpack of the engine's Snapshot (engine/store.py) begins with a map whose first key
is this (a fixstr of 8 bytes)."""


class ReadPool:
    """The operator's PostgreSQL reads (last trades, storage checks): a small asyncpg pool,
    made at first use (PostgreSQL may be down when the operator starts) and shared by every
    reconcile."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._pool: asyncpg.Pool | None = None
        self._making = asyncio.Lock()

    async def pool(self) -> asyncpg.Pool:
        async with self._making:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.dsn, min_size=0, max_size=POOL_SIZE,
                    server_settings={"application_name": APPLICATION_NAME},
                )  # fmt: skip
        return self._pool

    async def last_trade(self, name: str) -> asyncpg.Record | None:
        pool = await self.pool()
        async with pool.acquire() as conn:
            return await last_trade(conn, name)

    async def missing_storage(self, market: Market) -> list[str]:
        """What the market's storage lacks (storage.klines.missing_on)."""
        pool = await self.pool()
        async with pool.acquire() as conn:
            return await missing_on(conn, market)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


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


def snapshot_input_id(head: bytes) -> str | None:
    """The input id at the head of an engine snapshot; None if `head` is not one."""
    if not head or head[0] & 0xF0 != 0x80 or not head[1:].startswith(_INPUT_ID_KEY):
        return None
    rest = head[1 + len(_INPUT_ID_KEY) :]
    if rest[:1] and rest[0] & 0xE0 == 0xA0:
        length, start = rest[0] & 0x1F, 1
    elif rest[:1] == b"\xd9" and len(rest) > 1:
        length, start = rest[1], 2
    else:
        return None
    value = rest[start : start + length]
    return value.decode() if len(value) == length else None


async def snapshot_time(client: redis.asyncio.Redis, name: str) -> str | None:
    """When the newest input the engine's snapshot covers was enqueued (Redis's clock, the
    stream id's milliseconds); None: no snapshot yet."""
    head: Any = await client.getrange(keys.market_snapshot(name), 0, SNAPSHOT_HEAD - 1)
    input_id = snapshot_input_id(head or b"")
    if input_id is None or input_id in ("", "0", "0-0"):
        return None
    millis = int(input_id.split("-")[0])
    return _timestamp(datetime.fromtimestamp(millis / 1000, UTC))


@dataclass(frozen=True, slots=True)
class Lease:
    """The engine holding a market's lease, as its keys say (all None: no engine holds it)."""

    token: int | None = None
    """Its fencing token (each new holder draws a larger one)."""
    holder: str | None = None
    """Its Pod's name."""
    trading: str | None = None
    """Its trading state as of its last commit (None until it has recovered)."""


async def lease(client: redis.asyncio.Redis, name: str) -> Lease:
    """The lease's token, holder and trading state, read together (MULTI). The holder and
    trading state are None under a lease taken by an engine that reports neither (one from
    before), until its next renewal does."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.get(keys.market_lease(name))
        pipe.get(keys.market_lease_holder(name))
        pipe.get(keys.market_trading(name))
        token, holder, trading = await pipe.execute()
    if token is None:
        return Lease()
    return Lease(int(token), _text(holder), _text(trading))


def _text(value: bytes | None) -> str | None:
    return None if value is None else as_text(value)


async def engine_report(client: redis.asyncio.Redis, reads: ReadPool, name: str) -> dict[str, Any]:
    """`inputLag`, `snapshotTime`, `leaseToken`, `leaseHolder`, `engineTrading` and
    `lastTradeTime` for the status (None: no snapshot, holder or trade); a store that does
    not answer leaves its fields out (the last values stay)."""
    report: dict[str, Any] = {}
    with contextlib.suppress(redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        report["inputLag"] = await input_lag(client, name)
        report["snapshotTime"] = await snapshot_time(client, name)
        held = await lease(client, name)
        report["leaseToken"], report["leaseHolder"] = held.token, held.holder
        report["engineTrading"] = held.trading
    try:
        row = await reads.last_trade(name)
        report["lastTradeTime"] = None if row is None else _timestamp(row["ts"])
    except (OSError, asyncpg.PostgresError):
        pass
    return report


def _timestamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")
