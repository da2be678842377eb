"""Many users placing and canceling at once in two markets that share the quote asset."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import redis.asyncio

from tests.harness.api import Trader, funded
from tests.harness.stacks import Stack
from xch import keys
from xch.wire import as_text

USERS = 16
OPS = 25
ANSWERS = {200, 400, 404, 409}


async def _trade(trader: Trader, rng: random.Random, statuses: list[int]) -> None:
    placed: list[str] = []
    for _ in range(OPS):
        if placed and rng.random() < 0.3:
            response = await trader.delete(
                f"/api/v1/order/{placed.pop(rng.randrange(len(placed)))}"
            )
        else:
            # Prices around 100 so orders cross; sizes such that funds sometimes run out.
            response = await trader.place(
                market=rng.choice(["btc-usd", "eth-usd"]),
                side=rng.choice(["buy", "sell"]),
                type="limit" if rng.random() < 0.85 else "market",
                **_amounts(rng),
            )
            if response.status_code == 200 and response.json()["status"] in (
                "new",
                "partially_filled",
            ):
                placed.append(response.json()["order_id"])
        statuses.append(response.status_code)


def _amounts(rng: random.Random) -> dict[str, str]:
    quantity = f"{rng.randint(1, 40) / 100:.4f}"
    return (
        {"price": f"{rng.randint(95, 105)}.00", "quantity": quantity}
        if rng.random() < 0.85
        else {"quantity": quantity}
    )


async def _settled(client: redis.asyncio.Redis, market: str, timeout: float = 30) -> None:
    """Wait until the engine has committed everything in the market's input."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = await client.xrevrange(keys.market_input(market), count=1)
        applied = await client.get(keys.market_applied(market))
        if not last or (applied is not None and as_text(applied) == as_text(last[0][0])):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{market} did not settle")


async def test_funds_never_overdrawn_and_ledger_balanced(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    traders = [await funded(http, USD="300", BTC="2", ETH="2") for _ in range(USERS)]
    statuses: list[int] = []
    await asyncio.gather(*(_trade(t, random.Random(n), statuses) for n, t in enumerate(traders)))
    assert set(statuses) <= ANSWERS, statuses
    assert statuses.count(200) > USERS * OPS // 2
    assert 400 in statuses  # some orders were not covered by the free balance

    client = redis.asyncio.Redis.from_url(stack.redis_url)
    try:
        for market in ("btc-usd", "eth-usd"):
            await _settled(client, market)
        totals: dict[str, int] = {}
        async for key in client.scan_iter(match=keys.balances("*")):
            for field, value in (await client.hgetall(key)).items():
                assert int(value) >= 0, (key, field, value)
                asset = as_text(field).rsplit(":", 1)[0]
                totals[asset] = totals.get(asset, 0) + int(value)
        supply = {as_text(a): int(v) for a, v in (await client.hgetall(keys.SUPPLY)).items()}
        assert totals == supply
    finally:
        await client.aclose()
