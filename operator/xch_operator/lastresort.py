"""Closing a market whose engine Pods are gone: the engine service itself, run in-process.

When a namespace is deleted, Kubernetes deletes the engine's Deployment and Pods alongside
the Market, which waits on its finalizer for a close that no engine is left to apply. The
operator then runs the market's own engine service (the same code as `python -m engine`:
lease, recovery from Redis, the close, one fenced commit) until the close is applied, and
stops it. Nothing about settlement is re-implemented here.
"""

import asyncio
import contextlib

import redis.asyncio

from engine.service import EngineService
from xch.market import Market
from xch_operator.provisioning import applied_through

# The in-process engine takes no snapshot: it lives for one close.
NO_SNAPSHOT = 10**15


async def close_in_process(redis_url: str, market: Market, entry: str, timeout: float) -> bool:
    """Lead `market` until input `entry` is applied; False if that took longer than
    `timeout` (e.g. a live engine elsewhere still holds the lease)."""
    client = redis.asyncio.Redis.from_url(redis_url)
    service = EngineService(
        market.rules(), client, snapshot_every=NO_SNAPSHOT, snapshot_seconds=float(NO_SNAPSHOT)
    )
    task = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(timeout):
            while not await applied_through(client, market.name, entry):
                if task.done():
                    task.result()
                    return False
                await asyncio.sleep(0.05)
        return True
    except TimeoutError:
        return False
    finally:
        service.stop()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=10)
        await client.aclose()
