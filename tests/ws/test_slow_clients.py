"""A client that stops reading is resynced, then cut off, while the others keep up."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from ledger.gateway import Gateway
from tests.harness.engine import EngineProcess, wait_applied
from tests.harness.ws import WsClient, WsProcess
from tests.ws.test_streams import fund, random_flow, start_market
from xch import keys
from xch.schemas import Trade
from xch.wire import FIELD_EVENT, decode_events


async def commit_times(client: redis.asyncio.Redis, market: str) -> dict[int, float]:
    """trade id -> when its batch was committed (the events entry's id, in seconds)."""
    entries: Any = await client.xrange(keys.market_events(market))
    times: dict[int, float] = {}
    for entry_id, fields in entries:
        committed = int(entry_id.split(b"-")[0]) / 1000
        for event in decode_events(fields[FIELD_EVENT]):
            if isinstance(event, Trade):
                times[event.trade_id] = committed
    return times


async def test_stalled_client_is_cut_off_and_others_stay_on_time(
    redis_client: redis.asyncio.Redis,
    manifest: Path,
    engines: Callable[[], EngineProcess],
    ws_servers: Callable[..., WsProcess],
) -> None:
    env = {
        "EXCHANGE_WS_QUEUE_SIZE": "500",
        "EXCHANGE_WS_MAX_RESYNCS": "1",
        "EXCHANGE_WS_SEND_TIMEOUT": "3",
        # Its requests are what makes the stalled client slow here: the flood limit, which
        # would cut it off first, is tests/ws/test_access.py's.
        "EXCHANGE_WS_MAX_MESSAGES_PER_SECOND": "1000",
    }
    rules, server = await start_market(redis_client, manifest, engines, ws_servers, env)
    gateway = Gateway(redis_client)
    users = ["u0", "u1", "u2", "u3"]
    await fund(gateway, users)

    # The stalled client: a tiny receive buffer, and it never reads.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    stalled = await connect(server.url, sock=sock, max_queue=1, open_timeout=10)
    await stalled.send(
        '{"method": "SUBSCRIBE", "params": ["depth@btc-usd", "trade@btc-usd"], "id": 1}'
    )
    others = [await WsClient.open(server.url) for _ in range(3)]
    try:
        for client in others:
            await client.subscribe("depth@btc-usd", "trade@btc-usd")
        readers = [
            asyncio.create_task(client.collect(lambda c: False, timeout=3600)) for client in others
        ]
        await random_flow(gateway, rules, users, 200)
        # Asking for the (now deep) book over and over without reading the answers: a few
        # hundred kilobytes that fill the socket, then the queue.
        for n in range(800):
            request = f'{{"method": "SUBSCRIBE", "params": ["depth@btc-usd"], "id": {n + 2}}}'
            await stalled.send(request)
        last = await random_flow(gateway, rules, users[::-1], 200)
        await wait_applied(redis_client, rules.name, last)
        times = await commit_times(redis_client, rules.name)
        await asyncio.sleep(1)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

        metrics = await server.metrics()
        assert metrics['ws_slow_clients_total{action="disconnect"}'] == 1
        assert metrics['ws_slow_clients_total{action="resync"}'] == 1
        assert metrics["ws_connections"] == 3
        # The others got every trade, without a resync, and soon after its commit.
        delays = []
        for client in others:
            received = {
                m["data"]["trade_id"]: m["_at"]
                for m in client.data
                if m["stream"] == "trade@btc-usd"
            }
            assert set(received) == set(times)
            delays += [received[trade_id] - times[trade_id] for trade_id in times]
            assert not client.other
        delays.sort()
        assert delays[len(delays) * 99 // 100] < 0.5, delays[-10:]

        # The stalled client, reading at last, finds its connection ended.
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(20):
                while True:
                    await stalled.recv()
    finally:
        await stalled.close()
        for client in others:
            await client.close()
