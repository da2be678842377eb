"""A fresh, migrated database per test on the session's PostgreSQL server; and a migrated
PGlite with TimescaleDB per test module."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from storage.migrate import upgrade, upgrade_sql
from tests.harness.servers import PgliteServer, PostgresServer, start_pglite


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


async def connect_pglite(server: PgliteServer) -> asyncpg.Connection:
    """pglite-socket offers no TLS (so no SSL negotiation), and the previous client's named
    prepared statements are still in the one backend session, where asyncpg's would clash."""
    conn = await asyncpg.connect(server.url, ssl=False)
    await conn.execute("DEALLOCATE ALL")
    return conn


async def migrate_pglite(server: PgliteServer) -> None:
    """The migrations as Alembic's offline SQL script over one connection. Alembic's online
    run does all its work but then hangs: asyncpg's close() sends Terminate and waits for the
    server to close the socket, which pglite-socket 0.0.19 never does."""
    conn = await connect_pglite(server)
    try:
        await conn.execute(upgrade_sql())
    finally:
        conn.terminate()


@pytest.fixture(scope="module")
def pglite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgliteServer]:
    """PGlite with TimescaleDB, in memory, with the schema at head; stopped after the module."""
    server = start_pglite(tmp_path_factory.mktemp("pglite"))
    try:
        asyncio.run(migrate_pglite(server))
        yield server
    finally:
        server.stop()


@pytest.fixture
async def tsdb(pglite_server: PgliteServer) -> AsyncIterator[asyncpg.Connection]:
    """The one connection to PGlite for a test; closed with terminate() (see migrate_pglite)."""
    conn = await connect_pglite(pglite_server)
    try:
        yield conn
    finally:
        conn.terminate()
