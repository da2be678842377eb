"""dbproc as a process (`python -m dbproc`), and how tests wait for what it stores."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio

from tests.harness.processes import ServiceProcess, free_port
from tests.harness.servers import as_user
from xch import keys


@dataclass
class DbprocProcess(ServiceProcess):
    redis_url: str
    database_url: str
    log_file: Path
    consumer: str = "dbproc-test"
    env: dict[str, str] = field(default_factory=dict)
    health_port: int = field(default_factory=free_port)

    def arguments(self) -> list[str]:
        return [
            "dbproc",
            "--redis-url",
            as_user(self.redis_url, "dbproc"),
            "--database-url",
            self.database_url,
            "--consumer",
            self.consumer,
            "--health-port",
            str(self.health_port),
        ]


async def wait_stored(
    client: redis.asyncio.Redis, database_url: str, market: str, timeout: float = 60
) -> None:
    """Wait until dbproc acknowledged every entry of the market's events and funds streams."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await _caught_up(client, keys.market_events(market)) and await _caught_up(
            client, keys.FUNDS
        ):
            return
        await asyncio.sleep(0.1)
    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetchval(
            "SELECT max(last_seq) FROM stored_batches WHERE market = $1", market
        )
    finally:
        await conn.close()
    raise AssertionError(f"dbproc did not catch up within {timeout} s (stored to seq {stored})")


async def _caught_up(client: redis.asyncio.Redis, stream: str) -> bool:
    last: Any = await client.xrevrange(stream, count=1)
    if not last:
        return True
    groups: Any = await client.xinfo_groups(stream)
    for group in groups:
        name = group.get("name", group.get(b"name"))
        if name in (keys.DBPROC_GROUP, keys.DBPROC_GROUP.encode()):
            delivered = group.get("last-delivered-id", group.get(b"last-delivered-id"))
            pending = group.get("pending", group.get(b"pending"))
            return bool(delivered == last[0][0] and pending == 0)
    return False
