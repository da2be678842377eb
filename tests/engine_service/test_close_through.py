"""`python -m engine --close-through ENTRY`: the operator's one way to drive an engine, used
when a market's engine Pods are gone and its close must still be applied."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import redis.asyncio

from ledger.gateway import Balance, Gateway
from tests.harness.engine import load_rules, place, read_events
from tests.harness.processes import ROOT
from tests.harness.servers import RedisServer
from xch import keys
from xch.schemas import BUY, Close, OrderDone, Place
from xch.wire import as_text


async def close_through(redis_url: str, manifest: Path, entry: str) -> int:
    """Run the close-through engine to its end; its exit code."""
    engine = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "engine", "--market", load_rules(manifest).name, "--manifest", str(manifest)),
        *("--redis-url", redis_url, "--health-port", "0", "--close-through", entry),
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    async with asyncio.timeout(60):
        return await engine.wait()


async def test_the_close_is_applied_and_the_process_exits(
    redis_server: RedisServer, redis_client: redis.asyncio.Redis, manifest: Path
) -> None:
    rules = load_rules(manifest)
    gateway = Gateway(redis_client)
    await gateway.deposit("alice", "USD", 10**12)
    order = Place("b1", "alice", BUY, "limit", 3_000_000, 5000, 0, "GTC", "EXPIRE_MAKER", 0)
    assert await place(gateway, rules, order)
    close = await gateway.submit(rules.name, Close(), "operator")
    assert close is not None

    assert await close_through(redis_server.url, manifest, close) == 0

    assert as_text(await redis_client.get(keys.market_applied(rules.name))) == close
    assert (await gateway.balances("alice"))["USD"] == Balance(10**12, 0)
    done = [event for event in await read_events(redis_client, rules.name)
            if isinstance(event, OrderDone)]  # fmt: skip
    assert [event.order_id for event in done] == ["b1"]
    assert not await redis_client.exists(keys.market_lease(rules.name)), "lease handed back"


async def test_a_malformed_entry_is_refused_before_anything_runs(
    redis_server: RedisServer, redis_client: redis.asyncio.Redis, manifest: Path
) -> None:
    assert await close_through(redis_server.url, manifest, "not-an-entry") != 0
    assert not await redis_client.exists(keys.market_lease(load_rules(manifest).name))
