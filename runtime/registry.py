"""Finding a Market's spec: a manifest file (local mode, a ConfigMap) or the registry."""

import asyncio
import logging
from pathlib import Path

import redis.asyncio
import yaml

from xch import keys
from xch.market import Market

log = logging.getLogger("registry")


async def load_market(name: str, manifest: Path | None, client: redis.asyncio.Redis) -> Market:
    """The Market `name` from `manifest` if given, else from `xch:markets` (waiting for the
    operator to register it)."""
    if manifest is not None:
        market = Market.model_validate(yaml.safe_load(manifest.read_text()))
        if market.name != name:
            raise SystemExit(f"{manifest} is {market.name!r}, not {name!r}")
        return market
    while True:
        entry = await client.hget(keys.MARKETS, name)
        if entry is not None:
            return Market.from_registry_entry(entry)
        log.warning("market %s is not in the registry yet; waiting", name)
        await asyncio.sleep(1)
