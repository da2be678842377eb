"""Run the project's Alembic migrations: `python -m storage.migrate [DSN]` or `upgrade(dsn)`.

The history lives in `storage/migrations`; `alembic.ini` at the repository root points at the
same place for the `alembic` command. Upgrading an up-to-date database changes nothing.
"""

import argparse
import asyncio
import io
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def sqlalchemy_url(dsn: str) -> str:
    """`postgresql://…` (asyncpg's form) as SQLAlchemy's `postgresql+asyncpg://…`."""
    scheme, sep, rest = dsn.partition("://")
    if not sep or scheme not in ("postgresql", "postgres", "postgresql+asyncpg"):
        raise ValueError(f"not a PostgreSQL URL: {dsn!r}")
    return f"postgresql+asyncpg://{rest}"


def alembic_config(dsn: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(dsn).replace("%", "%%"))
    return config


def upgrade_sql(revision: str = "head") -> str:
    """The SQL that upgrading an empty database to `revision` runs, as one script with its own
    BEGIN and COMMIT (Alembic's offline mode), for servers Alembic cannot drive itself."""
    buffer = io.StringIO()
    config = Config(output_buffer=buffer)
    config.set_main_option("script_location", str(MIGRATIONS))
    command.upgrade(config, revision, sql=True)
    return buffer.getvalue()


def upgrade_sync(dsn: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(dsn), revision)


async def upgrade(dsn: str, revision: str = "head") -> None:
    """Upgrade from async code: Alembic runs its own event loop, so it gets a thread."""
    await asyncio.to_thread(upgrade_sync, dsn, revision)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dsn", help="postgresql://user@host:port/database")
    parser.add_argument("--revision", default="head")
    args = parser.parse_args()
    upgrade_sync(args.dsn, args.revision)


if __name__ == "__main__":
    main()
