"""The test servers are real and behave as the platform needs: Redis with AOF, PostgreSQL 15."""

from __future__ import annotations

import os
from decimal import Decimal

import asyncpg
import redis.asyncio

from tests.harness.servers import PostgresServer, RedisServer


async def test_redis_set_get_round_trip(redis_client: redis.asyncio.Redis) -> None:
    assert await redis_client.set("xch:test:key", "30000.01")
    assert await redis_client.get("xch:test:key") == b"30000.01"


async def test_redis_client_starts_empty(redis_client: redis.asyncio.Redis) -> None:
    assert await redis_client.dbsize() == 0


async def test_redis_stream_xadd_xrange(redis_client: redis.asyncio.Redis) -> None:
    first = await redis_client.xadd("xch:test:in", {"op": "place", "qty": "5"})
    second = await redis_client.xadd("xch:test:in", {"op": "cancel", "order": "1"})
    entries = await redis_client.xrange("xch:test:in")
    assert entries == [
        (first, {b"op": b"place", b"qty": b"5"}),
        (second, {b"op": b"cancel", b"order": b"1"}),
    ]


async def test_redis_aof_is_on(redis_client: redis.asyncio.Redis) -> None:
    assert await redis_client.config_get("appendonly") == {"appendonly": "yes"}
    assert await redis_client.config_get("appendfsync") == {"appendfsync": "everysec"}
    assert await redis_client.config_get("save") == {"save": ""}


async def test_redis_data_survives_stop_and_start(redis_server: RedisServer) -> None:
    writer = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        await writer.flushall()
        await writer.set("xch:test:durable", "kept")
        await writer.xadd("xch:test:events", {"seq": "1"})
    finally:
        await writer.aclose()
    port = redis_server.port

    redis_server.stop()
    assert not redis_server.running
    assert not redis_server.ping()
    redis_server.start()

    assert redis_server.port == port
    reader = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        assert await reader.get("xch:test:durable") == b"kept"
        assert await reader.xlen("xch:test:events") == 1
    finally:
        await reader.aclose()


async def test_postgres_numeric_round_trips_exactly(pg_conn: asyncpg.Connection) -> None:
    await pg_conn.execute("CREATE TEMP TABLE prices (id int PRIMARY KEY, price NUMERIC NOT NULL)")
    await pg_conn.execute("INSERT INTO prices VALUES (1, $1)", Decimal("30000.01"))
    price = await pg_conn.fetchval("SELECT price FROM prices WHERE id = 1")
    assert isinstance(price, Decimal)
    assert price == Decimal("30000.01")
    assert str(price) == "30000.01"


async def test_postgres_is_version_15(pg_conn: asyncpg.Connection) -> None:
    version = await pg_conn.fetchval("SELECT version()")
    assert "PostgreSQL 15" in version


async def test_postgres_settings(
    pg_conn: asyncpg.Connection, postgres_server: PostgresServer
) -> None:
    assert await pg_conn.fetchval("SELECT current_database()") == "exchange_test"
    assert await pg_conn.fetchval("SHOW fsync") == "off"
    assert await pg_conn.fetchval("SHOW listen_addresses") == "127.0.0.1"
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root; the fixture runs it as another user.
        assert postgres_server.run_as is not None
        assert postgres_server.data_dir.stat().st_uid != 0
