"""Several ws replicas side by side, a replica restart, and markets added while ws runs."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio
from websockets.exceptions import ConnectionClosed

from ledger.gateway import Gateway
from tests.harness.engine import EngineProcess, read_events, wait_applied, write_manifest
from tests.harness.processes import http_get
from tests.harness.servers import RedisServer
from tests.harness.ws import WsClient, WsProcess
from tests.ws.test_protocol import register
from tests.ws.test_streams import engine_book, fund, random_flow, rebuild, start_market
from xch import keys
from xch.schemas import Depth, Trade
from xch.wire import FIELD_EVENT, encode_events


async def test_replicas_agree_and_a_restart_only_costs_a_resubscribe(
    redis_client: redis.asyncio.Redis,
    manifest: Path,
    tmp_path: Path,
    engines: Callable[[], EngineProcess],
    ws_servers: Callable[..., WsProcess],
) -> None:
    rules, first = await start_market(redis_client, manifest, engines, ws_servers)
    second = ws_servers()
    await second.wait_ready()
    gateway = Gateway(redis_client)
    users = ["u0", "u1", "u2"]
    await fund(gateway, users)
    clients = [await WsClient.open(first.url), await WsClient.open(second.url)]
    try:
        for client in clients:
            await client.subscribe("trade@btc-usd", "depth@btc-usd")
        await wait_applied(redis_client, rules.name, await random_flow(gateway, rules, users, 120))
        trade_ids = [
            e.trade_id for e in await read_events(redis_client, rules.name) if isinstance(e, Trade)
        ]
        expected = await engine_book(redis_client, rules)
        for client in clients:
            await client.collect(lambda c: rebuild(c.stream("depth@btc-usd"))[0] >= expected[0])
            await client.collect(lambda c: len(c.stream("trade@btc-usd")) >= len(trade_ids))
            assert rebuild(client.stream("depth@btc-usd")) == expected
            assert [t["trade_id"] for t in client.stream("trade@btc-usd")] == trade_ids
        assert clients[0].stream("trade@btc-usd") == clients[1].stream("trade@btc-usd")

        # kill -9 one replica and start it again on its port; its client reconnects.
        first.kill()
        await clients[0].close()
        restarted = ws_servers(port=first.port)
        await restarted.wait_ready()
        clients[0] = await WsClient.open(restarted.url)
        await clients[0].subscribe("trade@btc-usd", "depth@btc-usd")
        last = await random_flow(gateway, rules, users[::-1], 120)
        await wait_applied(redis_client, rules.name, last)
        expected = await engine_book(redis_client, rules)
        new_trades = [
            e.trade_id
            for e in await read_events(redis_client, rules.name)
            if isinstance(e, Trade) and e.trade_id > trade_ids[-1]
        ]
        assert new_trades
        for client in clients:
            await client.collect(lambda c: rebuild(c.stream("depth@btc-usd"))[0] >= expected[0])
            assert rebuild(client.stream("depth@btc-usd")) == expected
            await client.collect(
                lambda c: c.stream("trade@btc-usd")[-1]["trade_id"] >= new_trades[-1]
            )
        received = [t["trade_id"] for t in clients[0].stream("trade@btc-usd")]
        assert received == new_trades

        # A market registered while ws runs can be subscribed to at once.
        await register(redis_client, write_manifest(tmp_path, "eth-usd"))
        await clients[1].subscribe("depth@eth-usd")
        await clients[1].collect(lambda c: bool(c.stream("depth@eth-usd")))
        assert clients[1].stream("depth@eth-usd")[0]["bids"] == []

        assert (await http_get(restarted.port, "/healthz"))[0] == 200
        metrics = await second.metrics()
        assert metrics['ws_subscriptions{kind="depth"}'] == 2
        assert metrics["ws_messages_out_total"] > len(trade_ids)
        assert metrics['ws_event_lag_seconds_count{market="btc-usd"}'] > 0

        # SIGTERM: the replica closes its connections and stops its readers, promptly.
        started = time.monotonic()
        second.terminate()
        # uvicorn re-raises the signal once it has shut down cleanly; a kill would be -9
        assert second.process is not None and second.process.returncode == -signal.SIGTERM
        assert time.monotonic() - started < 10
        assert "Traceback" not in second.log_file.read_text()
        with pytest.raises(ConnectionClosed):
            await clients[1].collect(lambda c: False, timeout=10)
    finally:
        for client in clients:
            await client.close()


async def test_a_redis_restart_costs_clients_nothing(
    redis_client: redis.asyncio.Redis,
    redis_server: RedisServer,
    manifest: Path,
    ws_servers: Callable[..., WsProcess],
) -> None:
    """Events entries are written here as the engine's commit writes them, so that only ws
    is under test."""
    await register(redis_client, manifest)
    server = ws_servers()
    await server.wait_ready()
    client = await WsClient.open(server.url)

    async def commit(redis: redis.asyncio.Redis, seq: int) -> None:
        trade = Trade(
            "btc-usd", seq, "1-0", 0, seq, 100, 1, 100, "m", "u1", "t", "u2", "buy", 0, 0, 0
        )
        depth = Depth("btc-usd", seq + 1, "1-0", 0, seq, seq + 1, [(100, seq)], [])
        await redis.xadd(
            keys.market_events("btc-usd"), {FIELD_EVENT: encode_events([trade, depth])}
        )

    try:
        await client.subscribe("trade@btc-usd", "depth@btc-usd")
        await commit(redis_client, 1)
        await client.collect(lambda c: len(c.stream("trade@btc-usd")) == 1)
        await asyncio.to_thread(redis_server.restart)  # graceful: the AOF keeps everything
        fresh = redis.asyncio.Redis.from_url(redis_server.url)
        try:
            await commit(fresh, 3)
        finally:
            await fresh.aclose()
        # The reader resumed where it was: the same connection, every trade, a chained book.
        await client.collect(lambda c: rebuild(c.stream("depth@btc-usd"))[0] == 4, timeout=30)
        assert [t["trade_id"] for t in client.stream("trade@btc-usd")] == [1, 3]
        assert rebuild(client.stream("depth@btc-usd")) == (
            4,
            {"bids": {"1.00": "0.0003"}, "asks": {}},
        )
    finally:
        await client.close()
