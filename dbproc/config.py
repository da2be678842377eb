"""The database processor's settings, from EXCHANGE_DBPROC_* environment variables."""

import os
import socket

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_consumer() -> str:
    # Stable across restarts of the same pod or host, so a restarted dbproc finds (and
    # finishes) the entries it had read but not yet acknowledged.
    return os.environ.get("HOSTNAME") or socket.gethostname()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXCHANGE_DBPROC_", frozen=True)

    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "postgresql://exchange@127.0.0.1:5432/exchange"
    consumer: str = Field(default_factory=_default_consumer, min_length=1)
    read_count: int = Field(default=200, ge=1)
    """Stream entries (engine batches) read, stored in one transaction and acknowledged."""
    writers: int = Field(default=3, ge=1)
    """Reads of one market being stored at once, each in its own transaction: PostgreSQL
    derives the rows of one while dbproc reads and decodes the next."""
    block_ms: int = Field(default=500, ge=1)
    claim_idle_ms: int = Field(default=30_000, ge=1000)
    """Entries another consumer read but left unacknowledged this long are taken over."""
    registry_poll_seconds: float = Field(default=2.0, gt=0)
    ticker_seconds: float = Field(default=1.0, gt=0)
    retry_max_seconds: float = Field(default=10.0, gt=0)
    memory_poll_seconds: float = Field(default=15.0, gt=0)
    """How often Redis's memory is read into the redis_memory_* metrics."""
    pool_size: int = Field(default=4, ge=1)
    migrate: bool = True
    """Run the Alembic migrations at start (idempotent)."""
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=8091, ge=0, le=65535)
