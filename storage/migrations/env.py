"""Alembic environment: migrations run on an async engine (asyncpg), online only."""

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


asyncio.run(run_online())
