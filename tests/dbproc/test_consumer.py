"""The consumer with several stores at once, on a real Redis: each read is acknowledged only
once its own store is done, and a failed store is read again and stored once."""

import asyncio

import redis.asyncio

from dbproc.consumer import Entry, GroupReader, consume
from xch.keys import DBPROC_GROUP
from xch.wire import as_text

STREAM = "xch:test:events"


async def test_concurrent_stores_acknowledge_only_what_they_stored(
    redis_client: redis.asyncio.Redis,
) -> None:
    ids = [await redis_client.xadd(STREAM, {b"n": str(n).encode()}) for n in range(60)]
    reader = GroupReader(redis_client, STREAM, "c1", count=5, block_ms=20, claim_idle_ms=60_000)
    stored: list[str] = []
    running: set[int] = set()
    most_at_once = 0
    failures = 0

    async def store(entries: list[Entry]) -> None:
        nonlocal most_at_once, failures
        pending = await redis_client.xpending_range(STREAM, DBPROC_GROUP, "-", "+", 100)
        assert {entry_id for entry_id, _ in entries} <= {as_text(p["message_id"]) for p in pending}
        running.add(id(entries))
        most_at_once = max(most_at_once, len(running))
        try:
            await asyncio.sleep(0.01)
            if entries[0][1][b"n"] == b"20" and not failures:
                failures += 1
                raise RuntimeError("PostgreSQL is away")
            stored.extend(entry_id for entry_id, _ in entries)
        finally:
            running.discard(id(entries))

    task = asyncio.create_task(consume(reader, store, 0.05, lambda: None, writers=2))
    try:
        async with asyncio.timeout(10):
            while len(stored) < len(ids) or await _pending(redis_client):
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert failures == 1
    assert most_at_once == 2
    assert sorted(stored) == sorted(as_text(entry_id) for entry_id in ids)  # each once


async def _pending(client: redis.asyncio.Redis) -> int:
    summary = await client.xpending(STREAM, DBPROC_GROUP)
    return int(summary["pending"])


async def test_a_consumer_that_keeps_up_stores_one_read_at_a_time(
    redis_client: redis.asyncio.Redis,
) -> None:
    """Reads that are not full (entries trickle in) are stored one at a time: what comes in
    meanwhile joins the next read instead of a transaction of its own."""
    reader = GroupReader(redis_client, STREAM, "c1", count=50, block_ms=20, claim_idle_ms=60_000)
    await reader.ensure_group()
    stored: list[int] = []
    running = 0
    most_at_once = 0

    async def store(entries: list[Entry]) -> None:
        nonlocal running, most_at_once
        running += 1
        most_at_once = max(most_at_once, running)
        await asyncio.sleep(0.02)
        stored.append(len(entries))
        running -= 1

    task = asyncio.create_task(consume(reader, store, 0.05, lambda: None, writers=3))
    try:
        for n in range(40):
            await redis_client.xadd(STREAM, {b"n": str(n).encode()})
            await asyncio.sleep(0.002)
        async with asyncio.timeout(10):
            while sum(stored) < 40 or await _pending(redis_client):
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert most_at_once == 1
    assert len(stored) < 40  # entries that came in during a store were read together


async def test_entries_trimmed_before_they_were_read_or_stored_are_reported(
    redis_client: redis.asyncio.Redis,
) -> None:
    lost: list[tuple[str, int]] = []
    reader = GroupReader(
        redis_client, STREAM, "c1", count=3, block_ms=20, claim_idle_ms=60_000,
        on_lost=lambda stream, count, _: lost.append((stream, count)),
    )  # fmt: skip
    await reader.ensure_group()
    ids = [as_text(await redis_client.xadd(STREAM, {b"n": str(n).encode()})) for n in range(10)]
    first = await reader.read()
    await reader.ack(first)
    assert [entry_id for entry_id, _ in first] == ids[:3] and lost == []
    await redis_client.xtrim(STREAM, maxlen=4, approximate=False)  # 3 to 5 go unread

    after_gap = await reader.read()
    assert lost == [(STREAM, 3)]
    assert [entry_id for entry_id, _ in after_gap] == ids[6:9]
    assert await reader.read() == [(ids[9], {b"n": b"9"})]
    assert lost == [(STREAM, 3)]  # reported once

    # read, not stored, then trimmed: its pending entry reads back empty
    await reader.ack([*after_gap, (ids[9], {})])
    await redis_client.xadd(STREAM, {b"n": b"10"})
    assert len(await reader.read()) == 1
    await redis_client.xtrim(STREAM, maxlen=0, approximate=False)
    reader.own_pending = True
    assert len(await reader.read()) == 1
    assert lost[1:] == [(STREAM, 1)]
