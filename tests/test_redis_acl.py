"""The Redis ACL users (charts/exchange/files/redis-acl.yaml) on a real redis-server: each
component's user can do its job and nothing else, the default user is closed, and the rules
survive a restart (the AOF replays what the scripts wrote).

The whole suite runs every component process as its own user (tests/harness/servers.py) and
fails a test on any refused command (the redis_client fixture reads ACL LOG); this module
checks the refusals that matter."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio
import redis.exceptions

from launcher import plan, redis_acl
from launcher.config import LocalConfig
from ledger.gateway import Gateway
from tests.harness.servers import RedisServer
from xch import keys

MARKET = "btc-usd"


@pytest.fixture
async def as_user(
    redis_server: RedisServer, redis_client: redis.asyncio.Redis
) -> AsyncIterator[Callable[[str], redis.asyncio.Redis]]:
    """Clients connected as a given user (on the emptied Redis of `redis_client`); ACL LOG
    emptied at the end, since these tests are refused on purpose."""
    clients: list[redis.asyncio.Redis] = []

    def connect(user: str) -> redis.asyncio.Redis:
        client = redis.asyncio.Redis.from_url(redis_server.url_for(user))
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.aclose()
    # A connection of its own: the test may have restarted Redis.
    async with redis.asyncio.Redis.from_url(redis_server.url) as admin:
        await admin.acl_log_reset()


async def refused(call: Awaitable[Any]) -> bool:
    try:
        await call
    except redis.exceptions.NoPermissionError:
        return True
    return False


async def test_the_default_user_is_closed(redis_server: RedisServer) -> None:
    anonymous = redis.asyncio.Redis(host=redis_server.host, port=redis_server.port)
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            await anonymous.ping()
        with pytest.raises(redis.exceptions.AuthenticationError):
            await anonymous.execute_command("AUTH", "default", "")  # type: ignore[no-untyped-call]
    finally:
        await anonymous.aclose()


async def test_every_component_has_a_user_and_admin_is_no_component() -> None:
    assert set(redis_acl.rules()) == {
        "api", "engine", "ws", "dbproc", "mm", "operator", "health", "admin"
    }  # fmt: skip


async def test_ws_only_reads(as_user: Callable[[str], redis.asyncio.Redis]) -> None:
    ws = as_user("ws")
    assert await ws.hgetall(keys.MARKETS) == {}
    assert await ws.xread({keys.market_events(MARKET): "0-0"}) == []
    assert await refused(ws.xadd(keys.market_input(MARKET), {"c": "x"}))
    assert await refused(ws.set(keys.listen_key("k"), "someone"))
    assert await refused(ws.hincrby(keys.balances("u"), "USD:free", 1))
    assert await refused(ws.publish(keys.reply_channel("api-1"), "x"))


async def test_the_api_moves_funds_and_enqueues_but_administers_nothing(
    as_user: Callable[[str], redis.asyncio.Redis],
) -> None:
    api = as_user("api")
    await Gateway(api).deposit("ann", "USD", 100)
    assert await api.hget(keys.balances("ann"), keys.free_field("USD")) == b"100"
    await api.set(keys.listen_key("k"), "ann", ex=60)
    for command in (("FLUSHALL",), ("CONFIG", "GET", "*"), ("KEYS", "*"), ("ACL", "LIST")):
        assert await refused(api.execute_command(*command)), command  # type: ignore[no-untyped-call]
    # Only the engine writes what it decided and the state it recovers from.
    assert await refused(api.xadd(keys.market_events(MARKET), {"e": "forged"}))
    assert await refused(api.set(keys.market_lease(MARKET), "1"))
    assert await refused(api.set(keys.market_lease_holder(MARKET), "forged"))
    assert await refused(api.set(keys.market_depth(MARKET), "x"))
    assert await refused(api.hset(keys.MARKETS, MARKET, "{}"))


async def test_the_api_hears_only_reply_channels(
    as_user: Callable[[str], redis.asyncio.Redis],
) -> None:
    pubsub = as_user("api").pubsub()
    try:
        await pubsub.subscribe(keys.reply_channel("api-1"))
        confirmed = await pubsub.get_message(timeout=5)
        assert confirmed is not None and confirmed["type"] == "subscribe"
        await pubsub.subscribe("elsewhere")
        with pytest.raises(redis.exceptions.NoPermissionError):
            await pubsub.get_message(timeout=5)
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def test_the_engine_keeps_to_markets_and_balances(
    as_user: Callable[[str], redis.asyncio.Redis],
) -> None:
    engine = as_user("engine")
    await engine.xadd(keys.market_events(MARKET), {"e": "batch"})
    await engine.publish(keys.reply_channel("api-1"), "reply")
    assert await refused(engine.set(keys.listen_key("k"), "someone"))
    assert await refused(engine.xadd(keys.FUNDS, {"s": "1"}))
    assert await refused(engine.hset(keys.MARKETS, MARKET, "{}"))
    assert await refused(engine.execute_command("FLUSHALL"))  # type: ignore[no-untyped-call]


async def test_dbproc_consumes_but_cannot_forge_events(
    as_user: Callable[[str], redis.asyncio.Redis], redis_client: redis.asyncio.Redis
) -> None:
    stream = keys.market_events(MARKET)
    await redis_client.xgroup_create(stream, keys.DBPROC_GROUP, id="0", mkstream=True)
    await redis_client.xadd(stream, {"e": "batch"})
    dbproc = as_user("dbproc")
    read: Any = await dbproc.xreadgroup(keys.DBPROC_GROUP, "c1", {stream: ">"})
    entry_id = read[0][1][0][0]
    assert await dbproc.xack(stream, keys.DBPROC_GROUP, entry_id) == 1
    await dbproc.set(keys.market_ticker(MARKET), "{}")
    assert await refused(dbproc.xadd(stream, {"e": "forged"}))
    assert await refused(dbproc.hincrby(keys.balances("u"), "USD:free", 1))
    assert await refused(dbproc.set(keys.listen_key("k"), "someone"))


async def test_market_makers_and_probes_read_next_to_nothing(
    as_user: Callable[[str], redis.asyncio.Redis],
) -> None:
    mm = as_user("mm")
    assert await mm.hgetall(keys.MARKETS) == {}
    assert await refused(mm.hgetall(keys.balances("u")))
    assert await refused(mm.get(keys.listen_key("k")))
    health = as_user("health")
    assert await health.ping()
    assert await refused(health.get(keys.listen_key("k")))


async def test_the_operator_administers_nothing(
    as_user: Callable[[str], redis.asyncio.Redis],
) -> None:
    operator = as_user("operator")
    await operator.hset(keys.MARKETS, MARKET, "{}")
    for command in (("FLUSHALL",), ("CONFIG", "SET", "appendonly", "no"), ("SHUTDOWN",)):
        assert await refused(operator.execute_command(*command)), command  # type: ignore[no-untyped-call]
    assert await refused(operator.set("elsewhere", "1"))


async def test_what_the_scripts_wrote_survives_a_restart(
    redis_server: RedisServer, as_user: Callable[[str], redis.asyncio.Redis]
) -> None:
    """Redis replays the AOF as the default user and re-checks each MULTI/EXEC (how scripts'
    writes are logged) against its rights: the default user keeps them, though off."""
    await Gateway(as_user("api")).deposit("ann", "USD", 100)
    redis_server.restart()
    reader = redis.asyncio.Redis.from_url(redis_server.url_for("ws"))
    try:
        assert await reader.hget(keys.balances("ann"), keys.free_field("USD")) == b"100"
    finally:
        await reader.aclose()


def test_the_local_stack_runs_each_component_as_its_own_user(tmp_path: Path) -> None:
    """`make up` (launcher/plan.py) hands each process the URL of its own user, whose password
    the local stack's ACL file holds."""
    config = dataclasses.replace(LocalConfig.from_env(), state=tmp_path)
    market = plan.MarketInfo("btc-usd", "BTC", "USD", market_maker=True)
    processes = [*plan.shared(config), *plan.per_market(config, 0, market)]
    users = {}
    for process in processes:
        (raw,) = [value for name, value in process.env.items() if name.endswith("_REDIS_URL")]
        users[process.name.split()[0]] = urlsplit(raw)
    assert {name: url.username for name, url in users.items()} == {
        name: name for name in ("dbproc", "api", "ws", "engine", "mm")
    }
    acl = config.redis_users().acl
    for url in users.values():
        assert url.username is not None and url.password is not None
        digest = hashlib.sha256(url.password.encode()).hexdigest()
        assert f"user {url.username} reset on #{digest} " in acl
