"""Redis goes away under load: the engine reconnects by itself, and nothing is lost or doubled.

Redis restarts gracefully (AOF, appendfsync everysec) twice while the load generator keeps
enqueueing and the engine keeps committing; the same engine process carries on. And, more
narrowly, a reply lost on the way back (the command ran, the connection broke before its
answer arrived), for the engine's batch commit and for the gateway's lock-and-enqueue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio
import redis.exceptions

from engine.store import MarketStore, stream_id_key
from ledger.gateway import Gateway
from tests.engine_service.load import (
    MID,
    Load,
    assert_ledger_balanced,
    read_input,
    redis_balances,
    verify,
)
from tests.engine_service.proxy import ReplyLosingProxy, script_sha
from tests.harness.engine import EngineProcess, load_rules, place, read_events, wait_applied
from tests.harness.servers import RedisServer, as_user
from xch import keys
from xch.schemas import BUY, SELL, Cancel, Depth, Place

StartEngine = Callable[..., EngineProcess]


async def test_the_engine_rides_out_redis_restarts_under_load(
    redis_client: redis.asyncio.Redis,
    redis_server: RedisServer,
    engines: StartEngine,
    manifest: Path,
) -> None:
    rules = load_rules(manifest)
    engine = engines({"EXCHANGE_ENGINE_BATCH_MAX": "50"})
    await engine.wait_ready()
    assert engine.process is not None
    pid = engine.process.pid
    load = Load(redis_client, rules, seed=31, users=30, retry_for=30)
    await load.fund()
    stop = asyncio.Event()
    generator = asyncio.create_task(load.run(stop, pause=0.003))
    try:
        for _ in range(2):
            await asyncio.sleep(1.0)
            before = len(load.submitted)
            await asyncio.to_thread(redis_server.restart)
            await asyncio.sleep(1.0)
            assert len(load.submitted) > before + 50, "the load did not resume"
            assert not generator.done(), generator
    finally:
        stop.set()
        await generator
    await wait_applied(redis_client, rules.name, load.last_entry_id, timeout=30)
    assert engine.running() and engine.process.pid == pid
    assert await engine.ready()

    # every entry the gateway answered with is in the input and was committed once
    entries = await read_input(redis_client, rules.name)
    returned = [entry.entry_id for entry in load.submitted]
    assert set(returned) <= {entry.entry_id for entry in entries}
    assert entries[-1].entry_id == load.last_entry_id
    await assert_ledger_balanced(redis_client)
    await verify(redis_client, rules, entries, load.deposits)
    log = engine.log_file.read_text()
    assert log.count("holding the lease") == 1 or "lost the lease" in log


async def test_an_idle_engine_resumes_after_a_redis_restart(
    redis_client: redis.asyncio.Redis,
    redis_server: RedisServer,
    engines: StartEngine,
    manifest: Path,
) -> None:
    """Idle (blocked in XREAD, its lease renewer asleep) when Redis restarts, the engine must
    lead again: once, a lost cancellation left its two tasks waiting on each other forever."""
    rules = load_rules(manifest)
    engine = engines()
    await engine.wait_ready()
    load = Load(redis_client, rules, seed=32, users=3, retry_for=30)
    await load.fund()
    for round_ in range(3):
        for _ in range(10):
            await load.step()
        await wait_applied(redis_client, rules.name, load.last_entry_id, timeout=30)
        await asyncio.sleep(0.5 + round_ * 0.4)  # idle, at a different point of the renewals
        await asyncio.to_thread(redis_server.restart)
    for _ in range(10):
        await load.step()
    await wait_applied(redis_client, rules.name, load.last_entry_id, timeout=30)
    assert "recovered" in engine.log_file.read_text().rsplit("rebuilding from Redis", 1)[-1]


@pytest.fixture
async def proxy(redis_server: RedisServer) -> AsyncIterator[ReplyLosingProxy]:
    proxy = ReplyLosingProxy(redis_server.url)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


async def test_a_batch_commit_whose_reply_is_lost_is_committed_once(
    redis_client: redis.asyncio.Redis,
    proxy: ReplyLosingProxy,
    manifest: Path,
    tmp_path: Path,
) -> None:
    """The engine's commit script runs, the connection breaks before its 'ok' arrives."""
    rules = load_rules(manifest)
    engine = EngineProcess(manifest, proxy.url, tmp_path / "engine.log", env={})
    engine.start()
    try:
        await engine.wait_ready()
        load = Load(redis_client, rules, seed=32, users=2)
        await load.fund()
        ann, ben = load.names
        # orders resting away from the action, so that settling twice need not go negative
        await load.place(load.limit(ann, BUY, price=MID - 100, qty=50))
        await load.place(load.limit(ben, SELL, price=MID + 100, qty=50))
        await load.place(load.limit(ben, SELL, price=MID, qty=10))
        await wait_applied(redis_client, rules.name, load.last_entry_id)

        proxy.arm(script_sha("commit"))
        await load.place(load.limit(ann, BUY, price=MID, qty=10))  # trades with ben's ask
        await asyncio.wait_for(proxy.cut.wait(), 10)
        await wait_applied(redis_client, rules.name, load.last_entry_id)
        await load.submit(Cancel("none", ann), ann)
        await wait_applied(redis_client, rules.name, load.last_entry_id)
        await asyncio.sleep(0.2)

        assert engine.running(), engine.log_file.read_text()[-3000:]
        assert await engine.ready()
        await verify(redis_client, rules, load.submitted, load.deposits)
    finally:
        engine.kill()


async def test_a_submit_whose_reply_is_lost_is_enqueued_at_most_once(
    redis_client: redis.asyncio.Redis, proxy: ReplyLosingProxy, manifest: Path
) -> None:
    """The lock-and-enqueue script runs, the connection breaks before the entry id arrives.

    The api's client (built as redis-py builds it by default) must not lock and enqueue the
    order a second time: either the caller learns that the outcome is unknown, or the order
    is in the input once."""
    rules = load_rules(manifest)
    api_client = redis.asyncio.Redis.from_url(as_user(proxy.url, "api"))
    try:
        gateway = Gateway(api_client)
        await gateway.deposit("ann", rules.quote, 10**9)
        first = Place("b0", "ann", BUY, "limit", MID, 10, 0, "GTC", "EXPIRE_MAKER", 0)
        assert await place(gateway, rules, first)  # the script is in Redis's cache now
        order = Place("b1", "ann", BUY, "limit", MID, 10, 0, "GTC", "EXPIRE_MAKER", 0)
        proxy.arm(script_sha("enqueue"))
        entry_id: str | None = None
        with contextlib.suppress(redis.exceptions.ConnectionError):
            # a ConnectionError (the outcome unknown to the caller) is acceptable
            entry_id = await place(gateway, rules, order)
        assert proxy.cut.is_set()
    finally:
        await api_client.aclose()
    entries = await read_input(redis_client, rules.name)
    lock = MID * 10 * rules.quote_per_tick_lot
    locked = (await redis_balances(redis_client))["ann"][rules.quote][1]
    ids = [entry.entry_id for entry in entries if entry.command == order]
    assert len(ids) <= 1, f"enqueued {len(ids)} times ({ids}), {locked} locked for one order"
    if entry_id is not None:
        assert ids == [entry_id]
    assert locked == lock * len(entries)


async def test_a_snapshot_whose_reply_is_lost_keeps_the_batch_records_it_does_not_cover(
    redis_client: redis.asyncio.Redis,
    redis_server: RedisServer,
    engines: StartEngine,
    manifest: Path,
    tmp_path: Path,
) -> None:
    """The snapshot child's script runs (stores the snapshot, drops the input and the batch
    records it covers) and the connection breaks before its 'ok' arrives, over a network
    slow enough that the engine commits batches while a snapshot is on its way. Recovery
    needs the record of every batch after the latest snapshot: a kill -9 (and the network
    gone with it) and a restart under load afterwards must recover exactly."""
    rules = load_rules(manifest)
    proxy = ReplyLosingProxy(redis_server.url)
    await proxy.start()
    env = {"EXCHANGE_ENGINE_SNAPSHOT_EVERY": "20", "EXCHANGE_ENGINE_BATCH_MAX": "5"}
    engine = EngineProcess(manifest, proxy.url, tmp_path / "engine.log", env=env)
    engine.start()
    store = MarketStore(redis_client, rules.name)
    load = Load(redis_client, rules, seed=34, users=10)
    await load.fund()
    stop = asyncio.Event()
    generator = asyncio.create_task(load.run(stop, pause=0.002))
    try:
        await engine.wait_ready()
        # a first snapshot puts the script in Redis's cache: the next ones are one EVALSHA
        deadline = time.monotonic() + 10
        while await store.load_snapshot() is None:
            assert time.monotonic() < deadline, "no first snapshot"
            await asyncio.sleep(0.02)
        proxy.slow[script_sha("snapshot")] = 0.1
        proxy.arm(script_sha("snapshot"))
        await asyncio.wait_for(proxy.cut.wait(), 10)
        await asyncio.sleep(0.6)  # more batches, more snapshots
        engine.kill()  # under load, and the network with it: no snapshot lands later
        await proxy.close()
        snapshot = await store.load_snapshot()
        assert snapshot is not None
        records = await store.batches()
        listed = {record.last_input_id for record in records}
        events = await read_events(redis_client, rules.name)
        after = stream_id_key(snapshot.input_id)
        batch_ends = [e.input_id for e in events if isinstance(e, Depth)]
        unlisted = [end for end in batch_ends if stream_id_key(end) > after and end not in listed]
        await redis_client.delete(keys.market_lease(rules.name))  # its holder is dead
        restarted = engines(env)
        try:
            await restarted.wait_ready(timeout=10)
            recovery = "recovered"
        except AssertionError as error:
            recovery = str(error)[-600:]
    finally:
        stop.set()
        await generator
        engine.kill()
        await proxy.close()
    assert not unlisted and recovery == "recovered", (
        f"the records of {len(unlisted)} batches after the snapshot at {snapshot.input_id} "
        f"are gone ({len(records)} records left); restart: {recovery}"
    )
    await wait_applied(redis_client, rules.name, load.last_entry_id)
    await verify(redis_client, rules, load.submitted, load.deposits)
