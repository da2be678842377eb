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


async def test_0004_derives_new_legs_keeps_the_stored_ones_and_goes_back(
    empty_database: str,
) -> None:
    await upgrade(empty_database, "0003")
    now = datetime(2026, 12, 7, tzinfo=UTC)
    trade = (
        "INSERT INTO trades (market, trade_id, ts, seq, price, qty, quote_qty, maker_order, "
        "maker_user, taker_order, taker_user, taker_side, maker_fee, taker_fee{}) VALUES "
        "('m', {}, $1, {}, 10, 0.5, 5.00, 'm.1', '1', 'm.2', '2', 'buy', 0.01, 0.0001{})"
    )
    conn = await asyncpg.connect(empty_database)
    try:
        await conn.execute(
            "INSERT INTO markets (name, base_asset, base_scale, quote_asset, quote_scale, "
            "tick_size, lot_size, spec) VALUES ('m', 'B', 4, 'Q', 2, 1, 0.1, '{}')"
        )
        # A trade stored before 0004, with its legs as rows: they stay, none is derived.
        await conn.execute(trade.format("", 1, 1, ""), now)
        await conn.execute(
            "INSERT INTO journal VALUES ('m', 1, 0, 'trade', '1', '2', 'Q', 0, -5, $1)", now
        )
        await upgrade(empty_database, "0004")
        await conn.reload_schema_state()
        journal = "SELECT seq, leg, user_id, asset, free_delta, locked_delta FROM journal"
        assert len(await conn.fetch(journal)) == 1
        # A trade stored after: its six legs are derived from its row, at each asset's scale.
        await conn.execute(trade.format(", refund", 2, 2, ", 0.25"), now)
        legs = [tuple(r) for r in await conn.fetch(journal + " WHERE seq = 2 ORDER BY leg")]
        assert [(leg, user, asset, str(free), str(locked)) for _, leg, user, asset, free, locked
                in legs] == [
            (0, "2", "Q", "0.25", "-5.25"),
            (1, "2", "B", "0.4999", "0.0000"),
            (2, "1", "B", "0.0000", "-0.5000"),
            (3, "1", "Q", "4.99", "0.00"),
            (4, "@fees", "B", "0.0001", "0.0000"),
            (5, "@fees", "Q", "0.01", "0.00"),
        ]  # fmt: skip
        before = await conn.fetch(journal + " ORDER BY seq, leg")
        await asyncio.to_thread(command.downgrade, alembic_config(empty_database), "0003")
        await conn.reload_schema_state()
        assert await conn.fetch(journal + " ORDER BY seq, leg") == before
    finally:
        await conn.close()
