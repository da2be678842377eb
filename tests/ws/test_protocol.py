"""The client protocol against a real ws process: requests, answers and errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import redis.asyncio
import yaml

from tests.harness.ws import WsClient, WsProcess
from xch import keys
from xch.auth import issue_token
from xch.market import Market

SECRET = "ws-test-secret-0123456789abcdef-0123456789"


async def register(client: redis.asyncio.Redis, manifest: Path) -> Market:
    market = Market.model_validate(yaml.safe_load(manifest.read_text()))
    await client.hset(keys.MARKETS, market.name, market.registry_entry())
    return market


async def test_subscribe_unsubscribe_and_errors(
    redis_client: redis.asyncio.Redis, manifest: Path, ws_servers: Callable[..., WsProcess]
) -> None:
    await register(redis_client, manifest)
    server = ws_servers({"EXCHANGE_JWT_SECRET": SECRET})
    await server.wait_ready()
    client = await WsClient.open(server.url)
    try:
        # Every param is subscribed, market names case-insensitively.
        await client.subscribe(
            "trade@BTC-USD", "depth@btc-usd", "kline_1m@Btc-Usd", "depth@btc-usd@100MS"
        )
        listed = await client.request("LIST_SUBSCRIPTIONS")
        assert listed["result"] == [
            "depth@btc-usd",
            "depth@btc-usd@100ms",
            "kline_1m@btc-usd",
            "trade@btc-usd",
        ]
        snapshot = next(m for m in client.data if m["stream"] == "depth@btc-usd")["data"]
        assert snapshot == {
            "type": "snapshot",
            "market": "btc-usd",
            "last_update_id": 0,
            "bids": [],
            "asks": [],
        }
        # UNSUBSCRIBE takes every param, not only the first.
        reply = await client.request(
            "UNSUBSCRIBE", ["trade@btc-usd", "DEPTH@btc-usd", "depth@btc-usd@100ms"]
        )
        assert reply == {"result": None, "id": client.next_id}
        listed = await client.request("LIST_SUBSCRIPTIONS")
        assert listed["result"] == ["kline_1m@btc-usd"]

        expected_codes = [
            ("not json", 1),
            ("[1, 2]", 1),
            ('{"method": "SUBSCRIBE", "params": ["trade@btc-usd"], "id": [1]}', 1),
            ('{"method": "DANCE", "id": 7}', 2),
            ('{"method": "SUBSCRIBE", "params": "trade@btc-usd", "id": 8}', 3),
            ('{"method": "SUBSCRIBE", "params": [], "id": 9}', 3),
            ('{"method": "SUBSCRIBE", "params": [42], "id": 10}', 3),
            ('{"method": "SUBSCRIBE", "params": ["candles@btc-usd"], "id": 11}', 4),
            ('{"method": "SUBSCRIBE", "params": ["kline_7m@btc-usd"], "id": 12}', 4),
            ('{"method": "SUBSCRIBE", "params": ["trade@btc-usd@100ms"], "id": 12}', 4),
            ('{"method": "SUBSCRIBE", "params": ["depth@btc-usd@1s"], "id": 12}', 4),
            ('{"method": "SUBSCRIBE", "params": ["trade@doge-usd"], "id": 13}', 5),
            ('{"method": "SUBSCRIBE", "params": ["orders"], "id": 14}', 6),
            ('{"method": "SUBSCRIBE", "params": ["balances"], "id": 15}', 6),
            ('{"method": "AUTH", "params": {"token": "nope"}, "id": 16}', 7),
            ('{"method": "AUTH", "params": {"listen_key": "missing"}, "id": 17}', 7),
            ('{"method": "AUTH", "params": ["x"], "id": 18}', 3),
        ]
        for frame, code in expected_codes:
            await client.send(frame)
            answer = await client.recv()
            assert answer["error"]["code"] == code, (frame, answer)
            assert isinstance(answer["error"]["msg"], str)
        await client.send(b'{"method": "PING", "id": 19}')  # a binary frame is read as well
        assert await client.answer(19) == {"result": "pong", "id": 19}
        # A refused SUBSCRIBE subscribes nothing, even its valid streams.
        reply = await client.request("SUBSCRIBE", ["ticker@btc-usd", "trade@nowhere"])
        assert reply["error"]["code"] == 5
        listed = await client.request("LIST_SUBSCRIPTIONS")
        assert listed["result"] == ["kline_1m@btc-usd"]
        metrics = await server.metrics()
        assert metrics["ws_protocol_errors_total"] >= len(expected_codes) + 1
        assert metrics["ws_connections"] == 1
    finally:
        await client.close()


async def test_authentication(
    redis_client: redis.asyncio.Redis, manifest: Path, ws_servers: Callable[..., WsProcess]
) -> None:
    await register(redis_client, manifest)
    await redis_client.set(keys.listen_key("lk-bob"), "bob", ex=60)
    server = ws_servers({"EXCHANGE_JWT_SECRET": SECRET, "EXCHANGE_WS_AUTH_CHECK_SECONDS": "0.1"})
    await server.wait_ready()
    alice_token = issue_token("alice", "access", SECRET, 60)
    refresh = issue_token("alice", "refresh", SECRET, 60)
    foreign = issue_token("alice", "access", "another-secret-0123456789abcdef-0123456789", 60)

    by_query = await WsClient.open(f"{server.url}?token={alice_token}")
    by_key = await WsClient.open(f"{server.url}?listen_key=lk-bob")
    by_message = await WsClient.open(server.url)
    try:
        await by_query.subscribe("orders", "balances")
        await by_key.subscribe("orders")
        for bad in (refresh, foreign):
            reply = await by_message.request("AUTH", {"token": bad})
            assert reply["error"]["code"] == 7
        reply = await by_message.request("AUTH", {"token": alice_token})
        assert reply == {"result": {"user": "alice"}, "id": by_message.next_id}
        await by_message.subscribe("balances")
        reply = await by_message.request("AUTH", {"listen_key": "lk-bob"})
        assert reply["error"]["code"] == 3  # no switching users under private streams

        # Private streams end with their credential: a revoked listen key, an expired JWT.
        await redis_client.delete(keys.listen_key("lk-bob"))
        notice = await by_key.recv()
        assert notice == {"event": "auth_expired", "streams": ["orders"]}
        assert (await by_key.request("LIST_SUBSCRIPTIONS"))["result"] == []
        short = await WsClient.open(
            f"{server.url}?token={issue_token('carol', 'access', SECRET, 1)}"
        )
        try:
            await short.subscribe("orders", "trade@btc-usd")
            notice = await short.recv(timeout=5)
            assert notice == {"event": "auth_expired", "streams": ["orders"]}
            assert (await short.request("LIST_SUBSCRIPTIONS"))["result"] == ["trade@btc-usd"]
            reply = await short.request("SUBSCRIBE", ["balances"])
            assert reply["error"]["code"] == 6
        finally:
            await short.close()
    finally:
        for client in (by_query, by_key, by_message):
            await client.close()


async def test_a_refused_switch_of_users_keeps_the_first_users_credential(
    redis_client: redis.asyncio.Redis, manifest: Path, ws_servers: Callable[..., WsProcess]
) -> None:
    """A connection under alice's listen key tries bob's (refused: alice's private streams are
    on). Revoking alice's key still ends her streams: the refused key replaced nothing."""
    await register(redis_client, manifest)
    await redis_client.set(keys.listen_key("lk-alice"), "alice", ex=60)
    await redis_client.set(keys.listen_key("lk-bob"), "bob", ex=60)
    server = ws_servers({"EXCHANGE_JWT_SECRET": SECRET, "EXCHANGE_WS_AUTH_CHECK_SECONDS": "0.1"})
    await server.wait_ready()
    client = await WsClient.open(f"{server.url}?listen_key=lk-alice")
    try:
        await client.subscribe("orders")
        reply = await client.request("AUTH", {"listen_key": "lk-bob"})
        assert reply["error"]["code"] == 3
        bob_token = issue_token("bob", "access", SECRET, 60)
        reply = await client.request("AUTH", {"token": bob_token})
        assert reply["error"]["code"] == 3

        await redis_client.delete(keys.listen_key("lk-alice"))
        notice = await client.recv(timeout=5)
        assert notice == {"event": "auth_expired", "streams": ["orders"]}
        assert (await client.request("LIST_SUBSCRIPTIONS"))["result"] == []
    finally:
        await client.close()


async def test_a_refused_binance_user_stream_keeps_the_first_listen_key(
    redis_client: redis.asyncio.Redis, manifest: Path, ws_servers: Callable[..., WsProcess]
) -> None:
    """The same on a Binance raw connection: subscribing to another user's listen key is
    refused, and closing the first key still ends its user-data stream."""
    await register(redis_client, manifest)
    alice_key, bob_key = "a" * 60, "b" * 60
    await redis_client.set(keys.listen_key(alice_key), "alice", ex=60)
    await redis_client.set(keys.listen_key(bob_key), "bob", ex=60)
    server = ws_servers({"EXCHANGE_WS_AUTH_CHECK_SECONDS": "0.1"})
    await server.wait_ready()
    client = await WsClient.open(f"{server.url}/{alice_key}")
    try:
        reply = await client.request("SUBSCRIBE", [bob_key])
        assert reply["msg"] == "Invalid request: the connection serves another user"
        assert (await client.request("LIST_SUBSCRIPTIONS"))["result"] == [alice_key]

        await redis_client.delete(keys.listen_key(alice_key))
        expired = await client.recv(timeout=5)
        assert (expired["e"], expired["listenKey"]) == ("listenKeyExpired", alice_key)
        assert (await client.request("LIST_SUBSCRIPTIONS"))["result"] == []
    finally:
        await client.close()
