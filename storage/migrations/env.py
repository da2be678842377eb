"""Alembic environment: migrations run on an async engine (asyncpg), or, in offline mode
(`alembic upgrade --sql`, storage.migrate.upgrade_sql), are written out as one SQL script."""

import asyncio
import os

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from storage.migrate import sqlalchemy_url
from storage.models import Base

config = context.config


def database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    dsn = os.environ.get("EXCHANGE_DATABASE_URL")
    if not dsn:
        raise RuntimeError("set EXCHANGE_DATABASE_URL or sqlalchemy.url")
    return sqlalchemy_url(dsn)


def run_in(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_async_engine(database_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_in)
    finally:
        await engine.dispose()


def run_offline() -> None:
    context.configure(dialect_name="postgresql", target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
