"""`python -m engine --market NAME`: run the engine service of one market.

The Market's spec comes from the registry (`xch:markets`) or, in local mode, from a Market
YAML file (`--manifest`). Every option also reads from EXCHANGE_ENGINE_* variables.

`--close-through ENTRY` is the one way another component drives an engine: the operator runs
it when a market's engine Pods are gone (its namespace is being deleted) and the close it
enqueued as input ENTRY must still be applied. The process leads the market until ENTRY is
committed and exits 0, or exits non-zero if the service failed first.
"""

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import uvloop

from engine.config import Settings
from engine.metrics import EngineMetrics
from engine.service import EngineService
from runtime.health import serve_health
from runtime.redis_client import redis_client
from runtime.registry import load_market

log = logging.getLogger("engine")

NO_SNAPSHOT = 10**15
"""A close-through engine lives for one close: it takes no snapshot."""


async def main(settings: Settings) -> None:
    client = redis_client(settings.redis_url)
    try:
        market = await load_market(settings.market, settings.manifest, client)
        rules = market.rules()
        metrics = EngineMetrics(rules.name)
        closing = settings.close_through is not None
        service = EngineService(
            rules,
            client,
            batch_max=settings.batch_max,
            block_ms=settings.block_ms,
            lease_ttl_ms=settings.lease_ttl_ms,
            snapshot_every=NO_SNAPSHOT
            if closing
            else settings.snapshot_every or market.spec.engine.snapshot_every,
            snapshot_seconds=float(NO_SNAPSHOT) if closing else settings.snapshot_seconds,
            events_maxlen=settings.events_maxlen,
            events_trim_seconds=settings.events_trim_seconds,
            depth_levels=settings.depth_levels,
            retry_seconds=settings.retry_seconds,
            metrics=metrics,
            freeze_heap=True,
        )
        health = None
        if settings.health_port:
            health = await serve_health(
                settings.health_host, settings.health_port, metrics, lambda: service.ready
            )
        work = (
            service.run_through(settings.close_through)
            if settings.close_through is not None
            else service.run()
        )
        try:
            await _until_signalled(work, service.stop)
        finally:
            if health is not None:
                health.close()
                await health.wait_closed()
    finally:
        await client.aclose()


async def _until_signalled(work: Coroutine[Any, Any, None], stop: Callable[[], None]) -> None:
    """Run `work` until it ends; SIGTERM/SIGINT call `stop` and cancel it."""
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(work)

    def on_signal() -> None:
        stop()
        task.cancel()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    log.info("stopped")


def cli(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine", description=__doc__.split("\n\n")[0])
    parser.add_argument("--market", help="the Market's name (EXCHANGE_ENGINE_MARKET)")
    parser.add_argument("--manifest", type=Path, help="a Market YAML file (local mode)")
    parser.add_argument("--redis-url", help="EXCHANGE_ENGINE_REDIS_URL")
    parser.add_argument("--health-port", type=int, help="0 turns the endpoint off")
    parser.add_argument(
        "--close-through", metavar="ENTRY", help="lead only until input ENTRY is applied"
    )
    args = parser.parse_args(argv)
    overrides = {name: value for name, value in vars(args).items() if value is not None}
    settings = Settings(**overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    uvloop.run(main(settings))


if __name__ == "__main__":
    cli()
