"""The services' Redis client keeps every cancellation (redis-py 8's default socket timeout,
enforced with Python 3.11's `asyncio.wait_for`, lost about 2% of them)."""

import asyncio
import random

import redis.asyncio

from runtime.redis_client import redis_client
from tests.harness.servers import RedisServer

STREAM = "xch:test:cancel"
GROUP = "g"


async def read_until_cancelled(client: redis.asyncio.Redis) -> int:
    """Blocking reads in a loop, as dbproc's consumer does; how many completed while the task
    was already cancelled (a cancellation that was lost)."""
    while True:
        await client.execute_command(  # type: ignore[no-untyped-call]
            "XREADGROUP", "GROUP", GROUP, "c", "COUNT", 5, "BLOCK", 20, "STREAMS", STREAM, ">"
        )  # fmt: skip
        task = asyncio.current_task()
        assert task is not None
        if task.cancelling():
            return 1


async def test_a_cancelled_command_always_ends_its_task(redis_server: RedisServer) -> None:
    client = redis_client(redis_server.url)
    try:
        await client.xgroup_create(STREAM, GROUP, id="$", mkstream=True)
        chance = random.Random(7)
        lost = 0
        for _ in range(400):
            task = asyncio.create_task(read_until_cancelled(client))
            await asyncio.sleep(chance.random() * 0.03)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=2)
            assert done, "a cancelled read never ended"
            if not task.cancelled():
                lost += task.result()
        assert lost == 0, f"{lost} of 400 cancellations were lost"
    finally:
        await client.aclose()
