"""`python -m dbproc`: store every market's events and the funds movements in PostgreSQL.

Options also read from EXCHANGE_DBPROC_* variables (dbproc/config.py).
"""

import argparse
import asyncio
import contextlib
import logging
import signal

import asyncpg
import uvloop

from dbproc.config import Settings
from dbproc.service import Dbproc, DbprocMetrics
from runtime.health import serve_health
from runtime.heap import freeze_startup_heap
from runtime.redis_client import redis_client
from storage.migrate import upgrade


async def main(settings: Settings) -> None:
    if settings.migrate:
        await upgrade(settings.database_url)
    client = redis_client(settings.redis_url)
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=settings.pool_size)
    metrics = DbprocMetrics()
    service = Dbproc(settings, client, pool, metrics)
    health = None
    if settings.health_port:
        health = await serve_health(
            settings.health_host, settings.health_port, metrics, lambda: service.ready
        )
    freeze_startup_heap()
    task = asyncio.create_task(service.run())
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        if health is not None:
            health.close()
            await health.wait_closed()
        await pool.close()
        await client.aclose()


def parse_settings() -> Settings:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-url")
    parser.add_argument("--database-url")
    parser.add_argument("--consumer")
    parser.add_argument("--health-port", type=int)
    given = {k: v for k, v in vars(parser.parse_args()).items() if v is not None}
    return Settings(**given)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    uvloop.run(main(parse_settings()))
