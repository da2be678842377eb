"""What the api does when what it depends on changes under it. A Redis outage is an
infrastructure fault: JSON 503 with Retry-After, never a hang or a
bare 500, and the api recovers by itself when Redis is back. A market halted or deleted in
the registry is refused (409, 404) within the registry cache's lifetime."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import yaml

from tests.harness.api import ApiProcess, market_manifest, signup
from tests.harness.servers import RedisServer, start_redis
from tests.harness.stacks import Stack
from xch import keys
from xch.market import Market


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = start_redis(tmp_path / "redis")
    try:
        market = Market.model_validate(
            yaml.safe_load(market_manifest(tmp_path, "btc-usd", "BTC").read_text())
        )
        client = redis.Redis.from_url(server.url)
        client.hset(keys.MARKETS, market.name, market.registry_entry())
        client.close()
        yield server
    finally:
        server.stop()


@pytest.fixture
def api_on_own_redis(stack: Stack, own_redis: RedisServer, tmp_path: Path) -> Iterator[ApiProcess]:
    api = ApiProcess(own_redis.url, stack.database_url, tmp_path / "api.log")
    api.start()
    try:
        api.wait_ready_blocking()
        yield api
    finally:
        api.terminate()


async def _ready(http: httpx.AsyncClient, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while (await http.get("/readyz")).status_code != 200:
        assert time.monotonic() < deadline, "the api did not recover"
        await asyncio.sleep(0.2)


async def test_redis_outage_answers_503_and_recovers(
    api_on_own_redis: ApiProcess, own_redis: RedisServer
) -> None:
    async with httpx.AsyncClient(base_url=api_on_own_redis.url, timeout=10) as http:
        trader = await signup(http)
        own_redis.stop()
        down = await trader.get("/api/v1/balances")
        assert down.status_code == 503, down.text
        assert down.json()["code"] == "unavailable" and down.headers["Retry-After"] == "1"
        assert (await http.get("/readyz")).status_code == 503
        own_redis.start()
        await _ready(http)
        assert (await trader.get("/api/v1/balances")).status_code == 200


async def test_registry_changes_route_at_once(
    api_on_own_redis: ApiProcess, own_redis: RedisServer, tmp_path: Path
) -> None:
    """The operator halting or deleting a market (its registry entry) reaches the api within
    the registry cache's lifetime (1 s)."""
    client = redis.Redis.from_url(own_redis.url)
    async with httpx.AsyncClient(base_url=api_on_own_redis.url, timeout=10) as http:
        trader = await signup(http)
        order = {
            "market": "btc-usd",
            "side": "buy",
            "type": "limit",
            "price": "1.00",
            "quantity": "1",
        }
        halted = Market.model_validate(
            yaml.safe_load(market_manifest(tmp_path, "btc-usd", "BTC", "Halted").read_text())
        )
        client.hset(keys.MARKETS, "btc-usd", halted.registry_entry())
        await asyncio.sleep(1.2)
        refused = await trader.place(**order)
        assert refused.status_code == 409 and refused.json()["code"] == "market_halted"
        client.hdel(keys.MARKETS, "btc-usd")
        await asyncio.sleep(1.2)
        gone = await http.get("/api/v1/depth", params={"market": "btc-usd"})
        assert gone.status_code == 404 and gone.json()["code"] == "unknown_market"
        assert (await http.get("/api/v1/markets")).json() == []
    client.close()
