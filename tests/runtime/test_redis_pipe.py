"""The pipelined connection (runtime/redis_pipe.py) against a real Redis: every reply to the
command that asked for it, however many wait at once, whatever fails or is cancelled."""

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio
import redis.exceptions
import uvloop

from runtime.redis_pipe import PipelinedRedis, PipelinedSubscription, address_of
from tests.harness.processes import free_port
from tests.harness.servers import RedisServer
from xch.keys import reply_channel


def pipe_for(url: str) -> PipelinedRedis:
    return PipelinedRedis(address_of(redis.asyncio.Redis.from_url(url)))


@pytest.fixture
async def pipe(
    redis_server: RedisServer, redis_client: redis.asyncio.Redis
) -> AsyncIterator[PipelinedRedis]:
    """As the api's ACL user (it may write xch:rl:*), on the emptied session server."""
    client = pipe_for(redis_server.url_for("api"))
    try:
        yield client
    finally:
        await client.aclose()


async def test_each_of_many_concurrent_commands_gets_its_own_reply(pipe: PipelinedRedis) -> None:
    chance = random.Random(3)
    values = [chance.randbytes(chance.randrange(0, 300)) for _ in range(2000)]

    async def set_and_get(index: int, value: bytes) -> bytes:
        await pipe.execute("SET", f"xch:rl:test:{index}", value)
        await asyncio.sleep(0)
        reply: bytes = await pipe.execute("GET", f"xch:rl:test:{index}")
        return reply

    got = await asyncio.gather(*(set_and_get(i, v) for i, v in enumerate(values)))
    assert got == values
    assert await pipe.execute("INCRBY", "xch:rl:test:n", 5) == 5


async def test_an_error_reply_is_raised_and_the_next_replies_stay_in_order(
    pipe: PipelinedRedis, redis_client: redis.asyncio.Redis
) -> None:
    await pipe.execute("SET", "xch:rl:test:text", "abc")
    results = await asyncio.gather(
        pipe.execute("INCR", "xch:rl:test:text"),
        pipe.execute("GET", "xch:rl:test:text"),
        pipe.execute("FLUSHALL"),  # not the api user's to run
        pipe.execute("INCR", "xch:rl:test:n"),
        return_exceptions=True,
    )
    assert isinstance(results[0], redis.exceptions.ResponseError)
    assert "not an integer" in str(results[0])
    assert results[1] == b"abc"
    assert isinstance(results[2], redis.exceptions.ResponseError)
    assert "NOPERM" in str(results[2])
    assert results[3] == 1
    await redis_client.acl_log_reset()  # the refused FLUSHALL is expected


async def test_a_script_is_loaded_again_after_a_flush(
    pipe: PipelinedRedis, redis_client: redis.asyncio.Redis
) -> None:
    script = pipe.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert await script(keys=["xch:rl:test:n"], args=[2]) == 2
    await redis_client.script_flush()
    assert await script(keys=["xch:rl:test:n"], args=[3]) == 5
    await redis_client.acl_log_reset()  # the refused EVALSHA is expected


async def test_a_cancelled_caller_leaves_the_others_their_replies(pipe: PipelinedRedis) -> None:
    tasks = [asyncio.create_task(pipe.execute("INCRBY", f"xch:rl:test:{i}", i)) for i in range(400)]
    await asyncio.sleep(0)  # sent, not answered
    for task in tasks[::3]:
        task.cancel()
    await asyncio.wait(tasks)
    for i, task in enumerate(tasks):
        if i % 3 == 0:
            assert task.cancelled()
        else:
            assert task.result() == i
    assert await pipe.execute("INCRBY", "xch:rl:test:after", 7) == 7


async def test_a_lost_connection_fails_what_waits_and_the_next_command_reconnects(
    redis_server: RedisServer, redis_client: redis.asyncio.Redis
) -> None:
    pipe = pipe_for(redis_server.url)  # the admin: BLPOP and CLIENT ID
    try:
        connection_id = await pipe.execute("CLIENT", "ID")
        waiting = asyncio.create_task(pipe.execute("BLPOP", "xch:rl:test:never", 30))
        await asyncio.sleep(0.1)
        await redis_client.client_kill_filter(_id=connection_id)
        with pytest.raises(redis.exceptions.ConnectionError):
            await asyncio.wait_for(waiting, 5)
        assert await pipe.execute("CLIENT", "ID") != connection_id
    finally:
        await pipe.aclose()


async def test_the_database_and_credentials_of_the_url_are_used(
    redis_server: RedisServer, redis_client: redis.asyncio.Redis
) -> None:
    pipe = pipe_for(f"{redis_server.url}/3")
    try:
        await pipe.execute("SET", "xch:rl:test:db", "3")
    finally:
        await pipe.aclose()
    assert await redis_client.get("xch:rl:test:db") is None
    await redis_client.select(3)
    assert await redis_client.get("xch:rl:test:db") == b"3"
    await redis_client.flushdb()

    wrong = pipe_for(redis_server.url_for("api").replace(redis_server.password("api"), "nope"))
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGPASS"):
        await wrong.execute("PING")
    await redis_client.acl_log_reset()  # the refused login is expected


CHANNEL = reply_channel("test")


@dataclass
class Subscribed:
    subscription: PipelinedSubscription
    got: list[bytes]

    async def received(self, count: int) -> list[bytes]:
        async with asyncio.timeout(5):
            while len(self.got) < count:
                await asyncio.sleep(0.01)
        return self.got


@pytest.fixture
async def subscribed(redis_server: RedisServer) -> AsyncIterator[Subscribed]:
    """A subscription to CHANNEL as the api's ACL user (the channel its replies come on)."""
    got: list[bytes] = []
    address = address_of(redis.asyncio.Redis.from_url(redis_server.url_for("api")))
    subscription = PipelinedSubscription(address, CHANNEL, got.append)
    running = asyncio.create_task(subscription.run(retry_seconds=0.05))
    try:
        await asyncio.wait_for(subscription.subscribed.wait(), 5)
        yield Subscribed(subscription, got)
    finally:
        running.cancel()


async def test_a_subscription_hands_over_each_message_in_order(
    subscribed: Subscribed, redis_client: redis.asyncio.Redis
) -> None:
    sent = [b"%d" % n * (n % 50) for n in range(500)]
    for message in sent:
        await redis_client.publish(CHANNEL, message)
    await redis_client.publish(reply_channel("another"), b"not ours")
    assert await subscribed.received(len(sent)) == sent


async def test_a_subscription_subscribes_again_after_a_lost_connection(
    subscribed: Subscribed, redis_client: redis.asyncio.Redis
) -> None:
    [subscriber] = [
        c for c in await redis_client.client_list() if c["name"] == "" and c["sub"] == "1"
    ]
    await redis_client.client_kill_filter(_id=subscriber["id"])
    state = subscribed.subscription.subscribed
    async with asyncio.timeout(5):
        while state.is_set():
            await asyncio.sleep(0.01)
        await state.wait()
    await redis_client.publish(CHANNEL, b"after")
    assert await subscribed.received(1) == [b"after"]


async def test_an_unreachable_redis_is_a_connection_error() -> None:
    pipe = pipe_for(f"redis://127.0.0.1:{free_port()}")
    with pytest.raises(redis.exceptions.ConnectionError):
        await pipe.execute("PING")


def test_a_unix_socket_address() -> None:
    address = address_of(redis.asyncio.Redis.from_url("unix://u:p@/run/redis.sock?db=2"))
    assert (address.path, address.username, address.password, address.db) == (
        "/run/redis.sock",
        "u",
        "p",
        2,
    )


def test_on_uvloop_as_the_services_run(redis_server: RedisServer) -> None:
    """uvloop's transports are not asyncio's classes; the same calls work on them."""

    async def calls() -> list[Any]:
        pipe = pipe_for(redis_server.url)
        try:
            script = pipe.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
            return list(
                await asyncio.gather(
                    pipe.execute("SET", "xch:rl:test:uv", 10),
                    script(keys=["xch:rl:test:uv"], args=[5]),
                )
            )
        finally:
            await pipe.aclose()

    assert uvloop.run(calls()) == [b"OK", 15]
