"""Chaos: kill -9 the engine at random moments while orders flow; nothing is lost or repeated.

A seeded load generator (~50 users: deposits, limit GTC/IOC/POST_ONLY/FOK, market orders,
cancels, cancel-alls, withdrawals) enqueues through the api's lock-and-enqueue script while
the engine is killed and restarted over and over: while starting, waiting for the lease,
recovering, matching, committing and snapshotting (small snapshot interval and batches).
Half of the kills take the engine's snapshot writer (a forked child) down with it, as the
death of its container does; some are timed to land while a snapshot is being written.
Afterwards everything committed must be what one clean replay of the same input gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import redis.asyncio

from engine.store import stream_id_key
from tests.engine_service.load import Load, verify
from tests.harness.engine import EngineProcess, child_pids, load_rules, wait_applied
from xch import keys
from xch.schemas import Depth, OrderAccepted, OrderRejected, Trade
from xch.wire import as_text

StartEngine = Callable[..., EngineProcess]

KILLS = 24
COMMANDS = 4000
SEED = int(os.environ.get("XCH_CHAOS_SEED", "20261122"))
"""XCH_CHAOS_SEED=<n> explores other kill schedules and loads."""
ENV = {
    "EXCHANGE_ENGINE_SNAPSHOT_EVERY": "50",
    "EXCHANGE_ENGINE_BATCH_MAX": "50",
    "EXCHANGE_ENGINE_LEASE_TTL_MS": "500",
    "EXCHANGE_ENGINE_EVENTS_MAXLEN": "10000000",
}


async def applied_id(client: redis.asyncio.Redis, market: str) -> str:
    value = await client.get(keys.market_applied(market))
    return "0-0" if value is None else as_text(value)


def kill(engine: EngineProcess, tree: bool) -> bool:
    """kill -9 the engine, and with `tree` its snapshot writer too; whether one was running."""
    assert engine.process is not None
    children = child_pids(engine.process.pid)
    engine.kill()
    if tree:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return bool(children)


async def snapshot_writer_forked(engine: EngineProcess, timeout: float = 1.5) -> bool:
    """Wait (polling /proc) until the engine has forked a snapshot writer."""
    assert engine.process is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child_pids(engine.process.pid):
            return True
        await asyncio.sleep(0.001)
    return False


async def test_kill_9_at_random_moments_loses_nothing_and_repeats_nothing(
    redis_client: redis.asyncio.Redis, engines: StartEngine, manifest: Path
) -> None:
    rules = load_rules(manifest)
    chaos = random.Random(SEED)
    load = Load(redis_client, rules, seed=SEED, users=50, funds_moves=True)
    await load.fund()
    engine = engines(ENV)
    await engine.wait_ready()
    stop = asyncio.Event()
    generator = asyncio.create_task(load.run(stop, pause=0.003, limit=6000))
    kills = live_kills = snapshots_seen = in_snapshot = 0
    last_snapshot: bytes | str | None = None
    started = time.monotonic()
    try:
        while kills < KILLS or len(load.submitted) < COMMANDS:
            mode = chaos.random()
            tree = chaos.random() < 0.5
            ready_at = None
            if mode < 0.2:
                # anywhere: importing, waiting for the lease, recovering, or running
                await asyncio.sleep(chaos.uniform(0.05, 0.8))
            elif mode < 0.45:
                # while a snapshot is being written
                await engine.wait_ready()
                await snapshot_writer_forked(engine)
                await asyncio.sleep(chaos.uniform(0, 0.002))
                tree = True
            else:
                await engine.wait_ready()
                ready_at = await applied_id(redis_client, rules.name)
                await asyncio.sleep(chaos.uniform(0.0, 0.4))
            assert not generator.done(), generator.exception()
            in_snapshot += kill(engine, tree) and tree
            kills += 1
            if ready_at is not None and stream_id_key(
                await applied_id(redis_client, rules.name)
            ) > stream_id_key(ready_at):
                live_kills += 1  # it had committed since it became ready
            snapshot = await redis_client.get(keys.market_snapshot(rules.name))
            if snapshot != last_snapshot:
                snapshots_seen += 1
                last_snapshot = snapshot
            engine = engines(ENV)
    finally:
        stop.set()
        await generator
    chaos_seconds = time.monotonic() - started
    await engine.wait_ready()
    await wait_applied(redis_client, rules.name, load.last_entry_id, timeout=60)

    verified = await verify(redis_client, rules, load.submitted, load.deposits, load.withdrawals)
    events = verified.events
    # the run exercised what it is meant to
    assert live_kills >= 8, (live_kills, kills)
    assert in_snapshot >= 3, (in_snapshot, kills)
    assert snapshots_seen >= 10, snapshots_seen
    assert len(load.submitted) >= COMMANDS, (len(load.submitted), chaos_seconds)
    assert sum(isinstance(e, Trade) for e in events) >= 500
    assert sum(isinstance(e, OrderAccepted) for e in events) >= 1000
    assert sum(isinstance(e, OrderRejected) for e in events) >= 100
    assert sum(isinstance(e, Depth) for e in events) >= 100
    assert load.withdrawals
    # the input the snapshots cover was trimmed
    assert await redis_client.xlen(keys.market_input(rules.name)) < 500
