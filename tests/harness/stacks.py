"""Whole stacks for the tests that need several components: Redis of their own, a fresh
database on the session's PostgreSQL, engines, dbproc and the api, each started once the
one before is ready and all stopped, newest first, when the stack ends."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
import redis.asyncio
import yaml

from tests.harness.api import ApiProcess, create_database, prepare_database
from tests.harness.dbproc import DbprocProcess, wait_stored
from tests.harness.engine import EngineProcess
from tests.harness.processes import ServiceProcess
from tests.harness.servers import PostgresServer, start_redis
from xch import keys
from xch.market import Market


@dataclass
class Stack:
    directory: Path
    api: ApiProcess
    redis_url: str
    database_url: str
    engines: list[EngineProcess]
    dbproc: DbprocProcess

    async def stored(self, *markets: str) -> None:
        """Wait until dbproc stored everything the markets' engines committed so far."""
        client = redis.asyncio.Redis.from_url(self.redis_url)
        try:
            for market in markets:
                await wait_stored(client, self.database_url, market)
        finally:
            await client.aclose()


def register_markets(redis_url: str, manifests: list[Path]) -> None:
    """Put the markets in the registry, as the operator does."""
    client = redis.Redis.from_url(redis_url)
    try:
        for path in manifests:
            market = Market.model_validate(yaml.safe_load(path.read_text()))
            client.hset(keys.MARKETS, market.name, market.registry_entry())
    finally:
        client.close()


def start_service(stop: ExitStack, service: ServiceProcess) -> None:
    """Start `service`, to be terminated when `stop` closes."""
    service.start()
    stop.callback(service.terminate)


@contextmanager
def running_stack(
    directory: Path,
    postgres: PostgresServer,
    manifests: list[Path],
    *,
    database: str,
    engines: int | None = None,
    dbproc_env: dict[str, str] | None = None,
    api_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """Every market in `manifests` registered and provisioned in a new database named
    `database`_…; an engine for each of the first `engines` of them (all by default)."""
    with ExitStack() as stop:
        redis_server = start_redis(directory / "redis")
        stop.callback(redis_server.stop)
        register_markets(redis_server.url, manifests)
        database_url = asyncio.run(
            create_database(postgres.url, f"{database}_{secrets.token_hex(4)}")
        )
        asyncio.run(prepare_database(database_url, manifests))
        running = []
        for path in manifests[:engines]:
            engine = EngineProcess(path, redis_server.url, directory / f"{path.stem}.log")
            start_service(stop, engine)
            running.append(engine)
        dbproc = DbprocProcess(
            redis_server.url, database_url, directory / "dbproc.log", env=dbproc_env or {}
        )
        start_service(stop, dbproc)
        for service in (*running, dbproc):
            asyncio.run(service.wait_ready())
        api = ApiProcess(redis_server.url, database_url, directory / "api.log", env=api_env or {})
        start_service(stop, api)
        api.wait_ready_blocking()
        yield Stack(directory, api, redis_server.url, database_url, running, dbproc)
