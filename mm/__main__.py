"""`python -m mm --market NAME`: make a market through the api, as an API-key user.

Options also read from EXCHANGE_MM_* variables (mm/config.py). SIGTERM cancels every quote
before the process exits.
"""

import argparse
import asyncio
import logging
import signal
from pathlib import Path

import httpx
import uvloop

from mm.client import ApiClient, ApiError
from mm.config import Settings
from mm.maker import Maker, MakerMetrics
from runtime.health import serve_health
from runtime.pause import pause
from runtime.redis_client import redis_client
from runtime.registry import load_market
from xch.money import parse_decimal

log = logging.getLogger("mm")


async def authenticate(client: ApiClient, settings: Settings, label: str) -> None:
    """Use the configured API key, or sign in (or up) and create a trade-scoped one."""
    if settings.api_key:
        client.use_key(settings.api_key, settings.api_secret.get_secret_value())
        return
    if not settings.email:
        raise SystemExit("set EXCHANGE_MM_API_KEY and _API_SECRET, or _EMAIL and _PASSWORD")
    await client.sign_in_or_up(settings.email, settings.password.get_secret_value())
    key, secret = await client.create_api_key(label, ["read", "trade"])
    client.use_key(key, secret)


async def top_up(client: ApiClient, wanted: dict[str, str]) -> None:
    """Demo mode: bring each asset's free balance up to at least the wanted amount."""
    balances = await client.balances()
    for asset, amount in wanted.items():
        free = balances.get(asset, ("0", "0"))[0]
        if parse_decimal(free) < parse_decimal(amount):
            await client.faucet(asset, amount)


async def start_trading(
    client: ApiClient, settings: Settings, label: str, stop: asyncio.Event
) -> bool:
    """Authenticate and top up, retrying while the api is not there yet (it may start after
    the market maker); False if stopped first."""
    delay = 0.5
    while not stop.is_set():
        try:
            await authenticate(client, settings, label)
            if settings.faucet:
                await top_up(client, settings.faucet)
            return True
        except (httpx.HTTPError, ApiError) as error:
            if isinstance(error, ApiError) and error.status < 500 and error.status != 429:
                raise
            log.warning("mm: the api is not ready (%s); retrying in %.1f s", error, delay)
            await pause(stop, delay)
            delay = min(delay * 2, 10.0)
    return False


async def main(settings: Settings) -> None:
    registry = redis_client(settings.redis_url)
    try:
        market = await load_market(settings.market, settings.manifest, registry)
    finally:
        await registry.aclose()
    client = ApiClient(settings.api_url, settings.requests_per_second)
    metrics = MakerMetrics(market.name)
    maker = Maker(market, client, metrics, requote_bps=settings.requote_bps)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    health = None
    if settings.health_port:
        health = await serve_health(
            settings.health_host, settings.health_port, metrics, lambda: maker.ready
        )
    try:
        if await start_trading(client, settings, f"mm-{market.name}", stop):
            await maker.run(stop, settings.interval_seconds)
    finally:
        if health is not None:
            health.close()
            await health.wait_closed()
        await client.aclose()


def parse_settings() -> Settings:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--market")
    parser.add_argument("--manifest", type=Path)
    parser.add_argument("--api-url")
    parser.add_argument("--redis-url")
    parser.add_argument("--health-port", type=int)
    given = {k: v for k, v in vars(parser.parse_args()).items() if v is not None}
    return Settings(**given)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    uvloop.run(main(parse_settings()))
