"""The migration history: the models are what it builds, and 0003 keeps the orders it finds."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from storage.migrate import alembic_config, sqlalchemy_url, upgrade
from storage.models import Base
from tests.harness.servers import PostgresServer
from tests.storage.conftest import create_database, drop_database


@pytest.fixture
async def empty_database(postgres_server: PostgresServer) -> AsyncIterator[str]:
    url = await create_database(postgres_server)
    try:
        yield url
    finally:
        await drop_database(postgres_server, url)


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_server_default": False})
    return list(compare_metadata(context, Base.metadata))


async def test_the_models_are_what_the_migrations_build(database: str) -> None:
    engine = create_async_engine(sqlalchemy_url(database))
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == []


async def test_0003_keeps_the_orders_adds_the_waiting_status_and_goes_back(
    empty_database: str,
) -> None:
    await upgrade(empty_database, "0002")
    now = datetime(2026, 11, 22, tzinfo=UTC)
    conn = await asyncpg.connect(empty_database)
    try:
        await conn.execute(
            "INSERT INTO orders (market, order_id, user_id, side, filled_qty, final_status, "
            "updated_at) VALUES ('m', 'm.1', '1', 'buy', 0, NULL, $1), "
            "('m', 'm.2', '1', 'buy', 2, NULL, $1), ('m', 'm.3', '1', 'buy', 2, 'filled', $1)",
            now,
        )
        await upgrade(empty_database, "0003")
        await conn.reload_schema_state()
        await conn.execute(
            "INSERT INTO orders (market, order_id, user_id, side, stop_price, updated_at) "
            "VALUES ('m', 'm.4', '1', 'sell', 5, $1), ('m', 'm.5', '1', 'sell', 5, $1)",
            now,
        )
        await conn.execute("UPDATE orders SET triggered_at = $1 WHERE order_id = 'm.5'", now)
        rows = await conn.fetch("SELECT order_id, status FROM orders ORDER BY order_id")
        assert [tuple(r) for r in rows] == [
            ("m.1", "new"),
            ("m.2", "partially_filled"),
            ("m.3", "filled"),
            ("m.4", "waiting"),
            ("m.5", "new"),
        ]
        await asyncio.to_thread(command.downgrade, alembic_config(empty_database), "0002")
        await conn.reload_schema_state()
        rows = await conn.fetch("SELECT order_id, status FROM orders ORDER BY order_id")
        assert [tuple(r) for r in rows][3:] == [("m.4", "new"), ("m.5", "new")]
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'"
        )
        assert {"stop_price", "list_id", "triggered_at"}.isdisjoint(r[0] for r in columns)
    finally:
        await conn.close()
