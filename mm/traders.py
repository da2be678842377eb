"""`python -m mm.traders`: demo users whose flow looks like a market's, so a local demo has a
living chart and book. Each signs up (or in), takes test funds from the faucet, then trades.

The flow: each market has a hidden reference price, a random walk (geometric, `volatility`
bps per square-root second) starting at the book's mid. Orders arrive as a Poisson process
(`rate` a second in all); each is a market order (most), a limit order that rests a few bps
behind the reference price, or a cancel of a trader's oldest resting order. A side is more
likely the further the book's mid is from the reference price (buying below it, selling
above it), so the book follows the reference instead of drifting; sizes are heavy-tailed
(Pareto, capped). Everything is drawn from seeded generators.

Flags: --api-url, --markets (comma-separated; all by default), --users, --rate, --seed,
--volatility (bps per square-root second), --size-lots (the smallest size), --max-size-lots.
"""

import argparse
import asyncio
import logging
import math
import random
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvloop

from mm.client import ApiClient, ApiError
from runtime.pause import pause
from xch.money import BPS, format_units, parse_decimal, to_units

log = logging.getLogger("traders")

MARKET_SHARE = 0.55
"""Of the orders that are not cancels, the share sent as market orders; the rest rest."""
CANCEL_SHARE = 0.15
PARETO_ALPHA = 1.5
"""Size tail: a finite mean, an infinite variance (capped by --max-size-lots)."""
SIDE_SCALE_BPS = 10.0
"""How far (bps) the mid must be from the reference price to make one side ~73% likely."""
REST_OFFSET_BPS = 15.0
"""The mean distance (bps) of a resting limit order behind the reference price."""
RESTING_PER_TRADER = 10


@dataclass(frozen=True)
class MarketInfo:
    name: str
    base: str
    quote: str
    tick: str
    lot: str


@dataclass(frozen=True)
class Flow:
    """The shape of the simulated flow."""

    volatility_bps: float = 1.5
    """Standard deviation of the reference price's move over one second, in bps."""
    size_lots: int = 5
    max_size_lots: int = 400


@dataclass
class Reference:
    """A market's hidden reference price: a geometric random walk in continuous time."""

    price: float
    """In ticks (a float: a simulated quantity, rounded to whole ticks where orders use it)."""
    updated: float

    def advance(self, rng: random.Random, now: float, volatility_bps: float) -> float:
        elapsed = max(0.0, now - self.updated)
        sigma = volatility_bps / BPS * math.sqrt(elapsed)
        self.price *= math.exp(rng.gauss(-sigma * sigma / 2, sigma))
        self.updated = now
        return self.price


def order_size(rng: random.Random, flow: Flow) -> int:
    """Lots: Pareto-distributed from `size_lots` up, capped at `max_size_lots`."""
    return min(flow.max_size_lots, math.floor(flow.size_lots * rng.paretovariate(PARETO_ALPHA)))


def buy_probability(mid: float, reference: float) -> float:
    """More buying the further the mid is below the reference price (a logistic curve)."""
    gap_bps = (reference - mid) / mid * BPS
    return 1 / (1 + math.exp(-gap_bps / SIDE_SCALE_BPS))


def resting_price(
    rng: random.Random, side: str, reference: float, best_bid: int, best_ask: int
) -> int:
    """Ticks a few bps behind the reference price, on the passive side of the book's opposite
    best so that the order rests."""
    offset = rng.expovariate(1 / REST_OFFSET_BPS) / BPS
    if side == "buy":
        return max(1, min(math.floor(reference * (1 - offset)), best_ask - 1))
    return max(math.ceil(reference * (1 + offset)), best_bid + 1)


@dataclass
class Trader:
    client: ApiClient
    rng: random.Random
    books: list[MarketInfo]
    resting: list[str] = field(default_factory=list)

    async def act(self, flow: Flow, references: dict[str, Reference]) -> None:
        if self.rng.random() < CANCEL_SHARE and self.resting:
            await self.client.cancel(self.resting.pop(0))
            return
        book = self.rng.choice(self.books)
        depth = await self.client.depth(book.name, limit=1)
        if not depth["bids"] or not depth["asks"]:
            return
        tick = parse_decimal(book.tick)
        best_bid, best_ask = (
            to_units(depth["bids"][0][0], tick),
            to_units(depth["asks"][0][0], tick),
        )
        mid = (best_bid + best_ask) / 2
        reference = references.setdefault(book.name, Reference(mid, time.monotonic()))
        fair = reference.advance(self.rng, time.monotonic(), flow.volatility_bps)
        side = "buy" if self.rng.random() < buy_probability(mid, fair) else "sell"
        quantity = format_units(order_size(self.rng, flow), parse_decimal(book.lot))
        order: dict[str, Any] = {"market": book.name, "side": side, "quantity": quantity}
        if self.rng.random() < MARKET_SHARE:
            order["type"] = "market"
        else:
            price = resting_price(self.rng, side, fair, best_bid, best_ask)
            order |= {"type": "limit", "price": format_units(price, tick)}
        placed = await self.client.place(order)
        if placed.get("status") in ("new", "partially_filled"):
            self.resting.append(placed["order_id"])
            del self.resting[:-RESTING_PER_TRADER]


async def markets(client: ApiClient, names: list[str]) -> list[MarketInfo]:
    listed = await client.request("GET", "/markets")
    return [
        MarketInfo(m["name"], m["base"], m["quote"], m["tick_size"], m["lot_size"])
        for m in listed
        if not names or m["name"] in names
    ]


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


async def main(
    api_url: str, names: list[str], users: int, rate: float, seed: int, flow: Flow
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    traders = await start_traders(api_url, names, users, seed, stop)
    rng = random.Random(seed)
    references: dict[str, Reference] = {}
    while not stop.is_set():
        trader = rng.choice(traders)
        try:
            await trader.act(flow, references)
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
    parser.add_argument("--volatility", type=float, default=Flow.volatility_bps)
    parser.add_argument("--size-lots", type=int, default=Flow.size_lots)
    parser.add_argument("--max-size-lots", type=int, default=Flow.max_size_lots)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    names = [name for name in args.markets.split(",") if name]
    flow = Flow(args.volatility, args.size_lots, args.max_size_lots)
    uvloop.run(main(args.api_url, names, args.users, args.rate, args.seed, flow))
