"""`python -m mm.traders`: a handful of demo users trading against the book, so a local demo
has a living chart. Each signs up (or in), takes test funds from the faucet, then now and then
sends a small market order or a limit order near the best price, and cancels stale ones.

Flags: --api-url, --markets (comma-separated; all by default), --users, --rate (orders per
second in all), --seed.
"""

import argparse
import asyncio
import logging
import random
import signal
from dataclasses import dataclass

import httpx
import uvloop

from mm.client import ApiClient, ApiError
from runtime.pause import pause
from xch.money import format_units, parse_decimal, to_units

log = logging.getLogger("traders")


@dataclass(frozen=True)
class MarketInfo:
    name: str
    base: str
    quote: str
    tick: str
    lot: str


async def markets(client: ApiClient, names: list[str]) -> list[MarketInfo]:
    listed = await client.request("GET", "/markets")
    return [
        MarketInfo(m["name"], m["base"], m["quote"], m["tick_size"], m["lot_size"])
        for m in listed
        if not names or m["name"] in names
    ]


class Trader:
    def __init__(self, client: ApiClient, rng: random.Random, books: list[MarketInfo]) -> None:
        self.client = client
        self.rng = rng
        self.books = books
        self.resting: list[str] = []

    async def act(self) -> None:
        book = self.rng.choice(self.books)
        side = self.rng.choice(("buy", "sell"))
        lots = self.rng.randint(1, 20)
        quantity = format_units(lots, parse_decimal(book.lot))
        roll = self.rng.random()
        if roll < 0.15 and self.resting:
            await self.client.cancel(self.resting.pop(0))
            return
        if roll < 0.6:
            order = {"market": book.name, "side": side, "type": "market", "quantity": quantity}
        else:
            depth = await self.client.depth(book.name, limit=1)
            best = depth["bids" if side == "buy" else "asks"]
            if not best:
                return
            tick = parse_decimal(book.tick)
            offset = self.rng.randint(-5, 2) * (1 if side == "buy" else -1)
            ticks = to_units(best[0][0], tick) + offset
            price = format_units(max(1, ticks), tick)
            order = {"market": book.name, "side": side, "type": "limit", "price": price,
                     "quantity": quantity}  # fmt: skip
        placed = await self.client.place(order)
        if placed.get("status") in ("new", "partially_filled"):
            self.resting.append(placed["order_id"])
            del self.resting[:-10]


async def start_trader(api_url: str, number: int, books: list[MarketInfo], seed: int) -> Trader:
    client = ApiClient(api_url, requests_per_second=5)
    await client.sign_in_or_up(f"demo-trader-{number}@example.com", f"demo-password-{number}")
    key, secret = await client.create_api_key("traders", ["read", "trade"])
    client.use_key(key, secret)
    funds = {b.base: "10" for b in books} | {b.quote: "100000" for b in books}
    for asset, amount in funds.items():
        await client.faucet(asset, amount)
    return Trader(client, random.Random(seed * 1000 + number), books)


async def start_traders(
    api_url: str, names: list[str], users: int, seed: int, stop: asyncio.Event
) -> list[Trader]:
    """Sign the demo users up, retrying while the api is not there yet (it may start later)."""
    delay = 0.5
    while not stop.is_set():
        admin = ApiClient(api_url)
        try:
            books = await markets(admin, names)
            return [await start_trader(api_url, n, books, seed) for n in range(users)]
        except httpx.HTTPError as error:
            log.warning("traders: the api is not ready (%s); retrying in %.1f s", error, delay)
        finally:
            await admin.aclose()
        await pause(stop, delay)
        delay = min(delay * 2, 10.0)
    return []


async def main(api_url: str, names: list[str], users: int, rate: float, seed: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    traders = await start_traders(api_url, names, users, seed, stop)
    rng = random.Random(seed)
    while not stop.is_set():
        trader = rng.choice(traders)
        try:
            await trader.act()
        except ApiError as error:
            log.info("traders: %s", error)
        await pause(stop, rng.expovariate(rate))
    for trader in traders:
        await trader.client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api-url", default="http://127.0.0.1:8000")
    parser.add_argument("--markets", default="")
    parser.add_argument("--users", type=int, default=5)
    parser.add_argument("--rate", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    names = [name for name in args.markets.split(",") if name]
    uvloop.run(main(args.api_url, names, args.users, args.rate, args.seed))
