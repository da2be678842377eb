"""Markets in local mode, provisioned and retired with the operator's own code
(xch_operator.provisioning), in the same order as its reconcile and its finalizer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import redis.asyncio
import yaml

from xch import keys
from xch.market import Market, OnDelete, Trading
from xch_operator import provisioning

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "markets"
LOCAL_OWNER = "local"
"""Who holds market names in local mode (in Kubernetes, the Market's uid)."""


def read_manifest(path: Path) -> Market:
    return Market.model_validate(yaml.safe_load(path.read_text()))


async def apply(client: redis.asyncio.Redis, dsn: str, market: Market) -> None:
    """Queue and storage, then the registry entry (the supervisor starts the engine and the
    market maker once it sees it). A spec change reaches a running engine as a trading
    command, as the operator's field handler does."""
    previous = await client.hget(keys.MARKETS, market.name)
    await provisioning.provision_storage(dsn, market)
    await provisioning.provision_queue(client, market, LOCAL_OWNER)
    if previous is not None:
        old = Market.from_registry_entry(previous)
        if old.spec.trading != market.spec.trading:
            await provisioning.set_trading(client, market.name, market.spec.trading.value)


async def delete(client: redis.asyncio.Redis, dsn: str, name: str, timeout: float = 60) -> None:
    """Halt, settle-and-close (every order canceled, funds unlocked), then unregister (the
    supervisor stops the engine and market maker) and keep or drop the history."""
    entry = await client.hget(keys.MARKETS, name)
    if entry is None:
        raise LookupError(f"no market {name!r}")
    market = Market.from_registry_entry(entry)
    await provisioning.set_trading(client, name, Trading.HALTED.value)
    closing = await provisioning.close(client, name)
    deadline = time.monotonic() + timeout
    while not await provisioning.applied_through(client, name, closing):
        if await provisioning.nothing_locked(client, name):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"the engine of {name} did not apply the close in {timeout} s")
        await asyncio.sleep(0.1)
    await provisioning.unregister(client, name)
    on_delete = market.spec.retention.on_delete
    await provisioning.release_storage(dsn, name, on_delete)
    if on_delete is OnDelete.DELETE:
        await provisioning.drop_queue(client, name)
