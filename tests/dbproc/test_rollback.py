"""Redis comes back older (docs/storage.md, "Redis rollback"): an AOF copied under load is
restored after more trading was stored, and trading goes on. History survives it: nothing
stored is skipped, overwritten or merged, every deposit is in the journal, and dbproc
reports the rollback. Real Redis, PostgreSQL, engine and dbproc."""

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import redis.asyncio

from api.binance.symbols import numbered_order_id
from api.ratelimit import RateLimiter
from tests.dbproc.test_service import MARKET, RULES, metric, processes, run_load, stack
from tests.engine_service.load import Load
from tests.harness.dbproc import DbprocProcess, wait_stored
from tests.harness.engine import EXAMPLE, EngineProcess
from tests.harness.servers import RedisServer
from xch import keys
from xch.schemas import Place
from xch.wire import FIELD_EPOCH, FIELD_EVENT, Epoch, decode_events

__all__ = ["processes", "stack"]  # the fixtures of test_service


class BinanceLoad(Load):
    """The load, its orders numbered as the Binance-compatible api numbers them (the
    market's order counter, drawn by the rate limiter's script)."""

    async def place(self, order: Place) -> str | None:
        limiter = RateLimiter(self.client, 1)
        _, number = await self._call(
            lambda: limiter.hit_numbered(
                ("ip", "load", 10**9), sequence=keys.market_order_seq(MARKET.name)
            )
        )
        numbered = numbered_order_id(MARKET.name, number)
        return await super().place(msgspec.structs.replace(order, order_id=numbered))


async def stream(client: redis.asyncio.Redis) -> list[tuple[Epoch, int]]:
    """Each events entry's epoch and how many events it holds."""
    raw: Any = await client.xrange(keys.market_events(MARKET.name))
    return [(Epoch.decode(f.get(FIELD_EPOCH)), len(decode_events(f[FIELD_EVENT]))) for _, f in raw]


async def stored(database: str) -> tuple[int, int]:
    """The highest seq and trade id stored."""
    conn = await asyncpg.connect(database)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT max(last_seq) FROM stored_batches WHERE market = $1), "
            "(SELECT max(trade_id) FROM trades)",
            MARKET.name,
        )
        return row[0], row[1]
    finally:
        await conn.close()


def restore(server: RedisServer, copy: Path) -> None:
    """Stop Redis, put the copied append-only files back, start it: Redis is older."""
    server.stop()
    aof = server.data_dir / "appendonlydir"
    shutil.rmtree(aof)
    shutil.copytree(copy, aof)
    server.start()


async def test_history_survives_redis_restored_from_an_older_aof_under_load(
    stack: Callable[..., DbprocProcess],
    processes: list[EngineProcess | DbprocProcess],
    redis_server: RedisServer,
    redis_client: redis.asyncio.Redis,
    database: str,
    tmp_path: Path,
) -> None:
    load = BinanceLoad(redis_client, RULES, seed=24, users=12, funds_moves=True, retry_for=30)
    await load.fund()
    dbproc = stack()
    await dbproc.wait_ready()
    await run_load(load, 500)
    await wait_stored(redis_client, database, MARKET.name)
    copy = tmp_path / "aof-copy"
    shutil.copytree(redis_server.data_dir / "appendonlydir", copy)  # under way: a live copy

    await run_load(load, 800)  # stored, then lost from Redis
    await wait_stored(redis_client, database, MARKET.name)
    before_seq, before_trade = await stored(database)

    old_epochs = {epoch.epoch for epoch, _ in await stream(redis_client)}
    for process in processes:
        if isinstance(process, EngineProcess):
            process.kill()
    await asyncio.to_thread(restore, redis_server, copy)
    engine = EngineProcess(EXAMPLE, redis_server.url, tmp_path / "engine-2.log")
    engine.start()
    processes.append(engine)
    await engine.wait_ready()
    await run_load(load, 800)
    await wait_stored(redis_client, database, MARKET.name)

    entries = await stream(redis_client)
    new = [(epoch, events) for epoch, events in entries if epoch.epoch not in old_epochs]
    assert new, "the engine committed nothing after the restore"
    resumed = new[0][0]
    assert resumed.seq < before_seq, "Redis did not come back older"
    new_events = sum(events for _, events in new)
    conn = await asyncpg.connect(database)
    try:
        # no batch skipped: the stored spans run gap-free from 1, the new events after the old
        spans = await conn.fetch(
            "SELECT first_seq, last_seq FROM stored_batches WHERE market = $1 ORDER BY 1",
            MARKET.name,
        )
        expected = 1
        for first, last in spans:
            assert first == expected, "a gap or an overlap in the stored seqs"
            expected = last + 1
        assert expected - 1 == before_seq + new_events
        trades = await conn.fetchrow(
            "SELECT count(*), count(DISTINCT trade_id), max(trade_id) FROM trades"
        )
        assert trades[0] == trades[1] and trades[2] > before_trade
        # every deposit, also those after the restore, is in the journal once
        deposits = await conn.fetchval(
            "SELECT count(*) FROM journal WHERE market = '@funds' AND kind = 'deposit' "
            "AND user_id <> '@external'"
        )
        assert deposits == len(load.deposits)
        # no order id names two orders, nor two users' orders or fills
        twice = await conn.fetch(
            "SELECT order_id FROM order_events WHERE kind = 'order_accepted' "
            "GROUP BY order_id HAVING count(*) > 1"
        )
        assert not twice, twice[:5]
        shared = await conn.fetch(
            "SELECT order_id FROM (SELECT taker_order AS order_id, taker_user AS u FROM trades "
            "UNION ALL SELECT maker_order, maker_user FROM trades "
            "UNION ALL SELECT order_id, user_id FROM order_events "
            "WHERE kind IN ('order_accepted', 'order_done')) AS t "
            "GROUP BY order_id HAVING count(DISTINCT u) > 1"
        )
        assert not shared, shared[:5]
        unbalanced = await conn.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM journal GROUP BY market, seq, asset "
            "HAVING sum(free_delta + locked_delta) <> 0) AS t"
        )
        assert unbalanced == 0
        rolled_back = await conn.fetchval(
            "SELECT rolled_back FROM epochs WHERE market = $1 AND epoch = $2",
            MARKET.name,
            resumed.epoch,
        )
    finally:
        await conn.close()
    assert rolled_back == before_seq - resumed.seq
    assert await metric(dbproc, f'dbproc_rollbacks_total{{market="{MARKET.name}"}}') == 1
    assert await metric(dbproc, "dbproc_events_rolled_back_total") == rolled_back
    assert "Redis came back older" in dbproc.log_file.read_text()
    assert dbproc.running()
