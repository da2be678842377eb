"""The market registry (`xch:markets`, written by the operator) as the api reads it: every
request routes through it, so a deleted market is unknown at once (after a short cache)."""

import asyncio
import logging
import time

import redis.asyncio

from api.errors import ApiError
from xch import keys
from xch.market import Market, MarketRules, Trading

log = logging.getLogger("api.markets")


class Registry:
    def __init__(self, client: redis.asyncio.Redis, cache_seconds: float) -> None:
        self.client = client
        self.cache_seconds = cache_seconds
        self._markets: dict[str, Market] = {}
        self._rules: dict[str, MarketRules] = {}
        self._loaded_at = float("-inf")
        self._reloading = asyncio.Lock()

    async def all(self) -> dict[str, Market]:
        if time.monotonic() - self._loaded_at >= self.cache_seconds:
            # One reload at a time: the requests that find the cache stale meanwhile wait for
            # it instead of each reading and parsing the whole registry.
            async with self._reloading:
                if time.monotonic() - self._loaded_at >= self.cache_seconds:
                    await self._reload()
        return self._markets

    async def _reload(self) -> None:
        raw = await self.client.hgetall(keys.MARKETS)
        markets = {}
        for name, entry in raw.items():
            try:
                market = Market.from_registry_entry(entry)
            except (ValueError, KeyError, TypeError):
                # One bad entry must not take every market down with it.
                log.error("unreadable registry entry %r", name)
                continue
            markets[market.name] = market
        self._markets = dict(sorted(markets.items()))
        self._rules = {name: market.rules() for name, market in self._markets.items()}
        self._loaded_at = time.monotonic()

    async def get(self, name: str) -> Market:
        """The market, or 404 if it is not (or no longer) in the registry."""
        market = (await self.all()).get(name)
        if market is None:
            raise ApiError(404, "unknown_market", f"no market named {name[:64]!r}")
        return market

    async def rules(self, name: str) -> MarketRules:
        await self.get(name)
        return self._rules[name]

    async def open_for_orders(self, name: str) -> MarketRules:
        """The market's rules, or 409 if it does not take new orders (CancelOnly, Halted)."""
        rules = await self.rules(name)
        if rules.trading != Trading.ENABLED:
            raise ApiError(
                409, "market_halted", f"market {name} is {rules.trading.value}: no new orders"
            )
        return rules

    async def asset_scales(self) -> dict[str, int]:
        """Every asset traded in some market, with its scale (one scale per asset)."""
        scales: dict[str, int] = {}
        for market in (await self.all()).values():
            scales[market.spec.base.asset] = market.spec.base.scale
            scales[market.spec.quote.asset] = market.spec.quote.scale
        return scales
