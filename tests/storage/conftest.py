"""A fresh, migrated database per test, on the session's PostgreSQL server."""

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from storage.migrate import upgrade
from tests.servers import PostgresServer


async def create_database(server: PostgresServer) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server.url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    return server.url.rsplit("/", 1)[0] + "/" + name


async def drop_database(server: PostgresServer, url: str) -> None:
    admin = await asyncpg.connect(server.url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def database(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """The URL of a new database with the schema at head; dropped afterwards."""
    url = await create_database(postgres_server)
    try:
        await upgrade(url)
        yield url
    finally:
        await drop_database(postgres_server, url)


@pytest.fixture
async def db(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database)
    try:
        yield conn
    finally:
        await conn.close()
