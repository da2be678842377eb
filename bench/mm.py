"""`make bench-mm`: the book the market maker keeps, under the taker simulator's flow.

A whole stack (Redis, PostgreSQL, the engine, dbproc, the api) for the example btc-usd
market, `python -m mm` quoting it and `python -m mm.traders` trading against it. After a
warm-up the book is sampled every half second for `--seconds` (600 by default): its spread
(bps of the mid) and the base resting within 0.5% and 1% of the mid on each side; and the
maker's holdings. Judged against the Market's marketMaker spec: median spread <= 2 x
spreadBps, 95th percentile <= 5 x, depth within 1% of the mid >= 10 x orderSize on each
side in every sample, inventory within maxInventory; and from the database, that the maker
never traded with itself nor took liquidity. Writes bench/results/mm.json.
"""

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import yaml

from bench.report import RESULTS as RESULTS_DIR
from bench.report import write_result
from mm.book import book_shape
from mm.strategy import Params
from tests.harness.engine import EXAMPLE
from tests.harness.mm import MakerProcess, TradersProcess
from tests.harness.servers import PostgresServer, start_postgres
from tests.harness.stacks import Stack, running_stack
from xch.market import Market, MarketRules

RESULTS = RESULTS_DIR / "mm.json"
MARKET = Market.model_validate(yaml.safe_load(EXAMPLE.read_text()))
MM_EMAIL = "mm-bench@example.com"
MM_PASSWORD = "market-maker-password"
SAMPLE_SECONDS = 0.5
WARM_UP_SECONDS = 15.0
TRADERS = ("--users", "4", "--rate", "3", "--seed", "26")


@dataclass
class Samples:
    spreads_bps: list[float] = field(default_factory=list)
    bid_lots_1pct: list[int] = field(default_factory=list)
    ask_lots_1pct: list[int] = field(default_factory=list)
    bid_lots_half_pct: list[int] = field(default_factory=list)
    ask_lots_half_pct: list[int] = field(default_factory=list)
    one_sided: int = 0
    """Samples in which a side of the book was empty (no spread to measure: counted apart)."""
    base_held: list[int] = field(default_factory=list)
    """The maker's base (free + locked), in minor units."""


@contextmanager
def trading(
    stack: Stack, market: Market = MARKET, manifest: Path = EXAMPLE
) -> Iterator[MakerProcess]:
    """The market maker (signing up, funded from the faucet with half its inventory bound)
    and the taker simulator, both stopped when the block ends."""
    maker = MakerProcess(
        market.name,
        manifest,
        stack.directory / "mm.log",
        env={
            "EXCHANGE_MM_API_URL": stack.api.url,
            "EXCHANGE_MM_REDIS_URL": stack.redis_url,
            "EXCHANGE_MM_EMAIL": MM_EMAIL,
            "EXCHANGE_MM_PASSWORD": MM_PASSWORD,
            "EXCHANGE_MM_FAUCET": json.dumps({market.spec.base.asset: "1", "USD": "100000"}),
        },
    )
    traders = TradersProcess(stack.api.url, stack.directory / "traders.log", TRADERS)
    maker.start()
    try:
        maker.wait_ready_blocking(timeout=30)
        traders.start()
        try:
            yield maker
        finally:
            traders.terminate()
    finally:
        maker.terminate(timeout=30)


async def sample(api_url: str, seconds: float, market: Market = MARKET) -> Samples:
    """The book and the maker's holdings every SAMPLE_SECONDS for `seconds`."""
    samples = Samples()
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as http:
        signin = await http.post(
            "/api/v1/signin", json={"email": MM_EMAIL, "password": MM_PASSWORD}
        )
        signin.raise_for_status()
        auth = {"Authorization": f"Bearer {signin.json()['access_token']}"}
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.monotonic()
            await _sample_once(http, auth, market.rules(), samples)
            await asyncio.sleep(max(0.0, SAMPLE_SECONDS - (time.monotonic() - started)))
    return samples


async def _sample_once(
    http: httpx.AsyncClient, auth: dict[str, str], rules: MarketRules, samples: Samples
) -> None:
    depth = await http.get("/api/v1/depth", params={"market": rules.name, "limit": 200})
    depth.raise_for_status()
    book = depth.json()
    bids = [(rules.price_to_ticks(p), rules.qty_to_lots(q)) for p, q in book["bids"]]
    asks = [(rules.price_to_ticks(p), rules.qty_to_lots(q)) for p, q in book["asks"]]
    shape = book_shape(bids, asks)
    if shape.spread_bps is None:
        samples.one_sided += 1
    else:
        samples.spreads_bps.append(shape.spread_bps)
    samples.bid_lots_1pct.append(shape.bid_lots[100])
    samples.ask_lots_1pct.append(shape.ask_lots[100])
    samples.bid_lots_half_pct.append(shape.bid_lots[50])
    samples.ask_lots_half_pct.append(shape.ask_lots[50])
    balances = await http.get("/api/v1/balances", headers=auth)
    balances.raise_for_status()
    held = {b["asset"]: b for b in balances.json()}.get(rules.base, {"free": "0", "locked": "0"})
    samples.base_held.append(
        rules.base_to_minor(held["free"]) + rules.base_to_minor(held["locked"])
    )


async def maker_trades(database_url: str) -> dict[str, int]:
    """The maker's trades with itself and as taker (both must be none), and in all."""
    conn = await asyncpg.connect(database_url)
    try:
        user = await conn.fetchval("SELECT id::text FROM users WHERE email = $1", MM_EMAIL)
        counts = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE maker_user = $1 AND taker_user = $1) AS self_trades,"
            " count(*) FILTER (WHERE taker_user = $1) AS taken,"
            " count(*) FILTER (WHERE maker_user = $1) AS made,"
            " count(*) AS trades"
            " FROM trades",
            user,
        )
        return dict(counts)
    finally:
        await conn.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(samples: Samples, trades: dict[str, int], market: Market = MARKET) -> dict[str, Any]:
    """The figures and, for each target, whether it was met."""
    params = Params.of(market)
    lot = market.rules().lot

    def base(lots: float) -> float:
        return float(round(Decimal(lots) * lot, 8))

    median = statistics.median(samples.spreads_bps)
    p95 = percentile(samples.spreads_bps, 0.95)
    min_bid, min_ask = min(samples.bid_lots_1pct), min(samples.ask_lots_1pct)
    held = [b / 10**market.spec.base.scale for b in samples.base_held]
    return {
        "samples": len(samples.bid_lots_1pct),
        "one_sided_samples": samples.one_sided,
        "spread_bps": {
            "configured": params.spread_bps,
            "median": round(median, 2),
            "p95": round(p95, 2),
            "max": round(max(samples.spreads_bps), 2),
        },
        "depth_within_1pct_base": {
            "bid_min": base(min_bid),
            "ask_min": base(min_ask),
            "bid_median": base(statistics.median(samples.bid_lots_1pct)),
            "ask_median": base(statistics.median(samples.ask_lots_1pct)),
            "order_size": base(params.order_lots),
        },
        "depth_within_half_pct_base": {
            "bid_median": base(statistics.median(samples.bid_lots_half_pct)),
            "ask_median": base(statistics.median(samples.ask_lots_half_pct)),
        },
        "inventory_base": {
            "min": min(held),
            "max": max(held),
            "bound": market.spec.market_maker.max_inventory,
        },
        "maker_trades": trades,
        "targets": {
            "median_spread_at_most_2x": median <= 2 * params.spread_bps,
            "p95_spread_at_most_5x": p95 <= 5 * params.spread_bps,
            "depth_1pct_at_least_10x_order_size": min(min_bid, min_ask) >= 10 * params.order_lots,
            "no_one_sided_book": samples.one_sided == 0,
            "inventory_within_bound": params.max_inventory is None
            or max(samples.base_held) <= params.max_inventory,
            "never_self_trades_nor_takes": trades["self_trades"] == 0 and trades["taken"] == 0,
        },
    }


def measure(stack: Stack, seconds: float, warm_up: float = WARM_UP_SECONDS) -> dict[str, Any]:
    """Run the maker and the traders on `stack`; the report of `seconds` after `warm_up`."""
    with trading(stack):
        time.sleep(warm_up)
        samples = asyncio.run(sample(stack.api.url, seconds))
    trades = asyncio.run(maker_trades(stack.database_url))
    return report(samples, trades) | {"seconds": seconds, "warm_up_seconds": warm_up}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="xch-bench-mm-"))
    # Its own directory: start_postgres hands it to the user PostgreSQL runs as.
    postgres: PostgresServer = start_postgres(Path(tempfile.mkdtemp(prefix="xch-bench-pg-")))
    try:
        with running_stack(
            workdir / "stack",
            postgres,
            [EXAMPLE],
            database="bench_mm",
            dbproc_env={"EXCHANGE_DBPROC_BLOCK_MS": "50"},
        ) as stack:
            result = measure(stack, args.seconds)
    finally:
        postgres.stop()
    write_result(result, args.output)


if __name__ == "__main__":
    main()
