"""The engine caps its events stream, but never past what storage (dbproc's consumer group)
has not acknowledged: a stalled consumer keeps everything it still has to store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.asyncio

from ledger.gateway import Gateway
from tests.harness.engine import EngineProcess, load_rules, place, wait_applied
from tests.harness.processes import http_get
from xch import keys
from xch.schemas import BUY, Place

StartEngine = Callable[..., EngineProcess]
CAP = 1000
TRIM = {"EXCHANGE_ENGINE_EVENTS_MAXLEN": str(CAP), "EXCHANGE_ENGINE_EVENTS_TRIM_SECONDS": "0.05"}


async def _commit_one(client: redis.asyncio.Redis, manifest: Path, order_id: str) -> None:
    rules = load_rules(manifest)
    gateway = Gateway(client)
    await gateway.deposit("ann", "USD", 10**9)
    entry = await place(
        gateway, rules, Place(order_id, "ann", BUY, "limit", 100, 1, 0, "GTC", "EXPIRE_MAKER", 0)
    )
    assert entry is not None
    await wait_applied(client, rules.name, entry)


async def _settled_length(client: redis.asyncio.Redis, stream: str) -> int:
    """The stream's length once the engine's trims (every 0.05 s) have had their turn."""
    await asyncio.sleep(0.5)
    return int(await client.xlen(stream))


async def test_a_stalled_storage_consumer_keeps_what_it_has_not_acknowledged(
    redis_client: redis.asyncio.Redis, engines: StartEngine, manifest: Path
) -> None:
    stream = keys.market_events(load_rules(manifest).name)
    await redis_client.xgroup_create(stream, keys.DBPROC_GROUP, id="0", mkstream=True)
    for _ in range(3 * CAP):  # older batches than the cap allows, none stored yet
        await redis_client.xadd(stream, {"e": b"old"})
    # dbproc read 2000 of them, stored and acknowledged the last 1500, then stalled
    read: Any = await redis_client.xreadgroup(keys.DBPROC_GROUP, "d1", {stream: ">"}, count=2000)
    ids = [entry_id for entry_id, _ in read[0][1]]
    await redis_client.xack(stream, keys.DBPROC_GROUP, *ids[500:])
    engine = engines(TRIM)
    await engine.wait_ready()
    await _commit_one(redis_client, manifest, "o1")

    assert await _settled_length(redis_client, stream) == 3 * CAP + 1  # nothing went
    assert await redis_client.xrange(stream, ids[0], ids[0])  # the oldest pending is there
    status, body = await http_get(engine.health_port, "/metrics")
    assert status == 200
    assert f"engine_events_unstored {float(CAP + 500 + 1)}".encode() in body

    # once storage caught up, the stream goes back to its cap
    await redis_client.xack(stream, keys.DBPROC_GROUP, *ids[:500])
    rest: Any = await redis_client.xreadgroup(keys.DBPROC_GROUP, "d1", {stream: ">"})
    await redis_client.xack(stream, keys.DBPROC_GROUP, *[i for i, _ in rest[0][1]])
    deadline = time.monotonic() + 10
    while await redis_client.xlen(stream) > 2 * CAP and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert CAP <= await redis_client.xlen(stream) < 2 * CAP


async def test_without_a_storage_group_nothing_is_trimmed(
    redis_client: redis.asyncio.Redis, engines: StartEngine, manifest: Path
) -> None:
    stream = keys.market_events(load_rules(manifest).name)
    for _ in range(2 * CAP):
        await redis_client.xadd(stream, {"e": b"old"})
    engine = engines(TRIM)
    await engine.wait_ready()
    await _commit_one(redis_client, manifest, "o1")
    assert await _settled_length(redis_client, stream) == 2 * CAP + 1
