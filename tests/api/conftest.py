"""The api tests' stack: one per module (servers and processes take seconds to start)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis
import yaml

from tests.api.stack import ApiProcess, Stack, create_database, market_manifest, prepare_database
from tests.dbproc.harness import DbprocProcess
from tests.engine_service.harness import EngineProcess
from tests.servers import PostgresServer, start_redis
from xch import keys
from xch.market import Market

# Two markets sharing the quote asset, each with an engine; a halted market; and a market
# whose engine is not running (its commands wait in its input: the api answers 202).
MARKETS = (
    ("btc-usd", "BTC", "Enabled"),
    ("eth-usd", "ETH", "Enabled"),
    ("sol-usd", "SOL", "Halted"),
    ("ada-usd", "ADA", "Enabled"),
)
ENGINES = 2


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer
) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("api-stack")
    redis_server = start_redis(directory / "redis")
    engines: list[EngineProcess] = []
    api: ApiProcess | None = None
    dbproc: DbprocProcess | None = None
    try:
        manifests = [market_manifest(directory, *spec) for spec in MARKETS]
        client = redis.Redis.from_url(redis_server.url)
        for path in manifests:
            market = Market.model_validate(yaml.safe_load(path.read_text()))
            client.hset(keys.MARKETS, market.name, market.registry_entry())
        client.close()
        database_url = asyncio.run(
            create_database(postgres_server.url, f"api_{secrets.token_hex(4)}")
        )
        asyncio.run(prepare_database(database_url, manifests))
        for path in manifests[:ENGINES]:
            engine = EngineProcess(path, redis_server.url, directory / f"{path.stem}.log")
            engine.start()
            engines.append(engine)
        dbproc = DbprocProcess(
            redis_server.url,
            database_url,
            directory / "dbproc.log",
            env={"EXCHANGE_DBPROC_REGISTRY_POLL_SECONDS": "0.2", "EXCHANGE_DBPROC_BLOCK_MS": "50"},
        )
        dbproc.start()
        for service in (*engines, dbproc):
            asyncio.run(service.wait_ready())
        api = ApiProcess(
            redis_server.url,
            database_url,
            directory / "api.log",
            env={"EXCHANGE_API_RATE_LIMIT_USER": "200", "EXCHANGE_API_RATE_LIMIT_IP": "100000"},
        )
        api.start()
        api.wait_ready()
        yield Stack(api, redis_server.url, database_url, engines, dbproc)
    finally:
        if api is not None:
            api.stop()
        if dbproc is not None:
            dbproc.terminate()
        for engine in engines:
            engine.terminate()
        redis_server.stop()


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.api.url, timeout=10) as client:
        yield client
