"""The engine process's collector policy (`EngineService(freeze_heap=True)`): what a recovery
builds is frozen out of the collector's full passes, and what a recovery throws away is
collected, not kept frozen for ever."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import pytest
import redis.asyncio

from engine.service import EngineService
from ledger.gateway import Gateway
from tests.harness.engine import EXAMPLE, load_rules
from xch.schemas import BUY, Place

RULES = load_rules(EXAMPLE)
RESTING = 3000


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """The test process's collector as it was: nothing frozen, before and after."""
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def rest_orders(client: redis.asyncio.Redis, service: EngineService, token: int) -> None:
    """`RESTING` buy orders at different prices, committed: a book to recover."""
    gateway = Gateway(client)
    await gateway.deposit("ann", RULES.quote, 10**15)
    for n in range(RESTING):
        price = 1_000_000 + n
        order = Place(f"o{n}", "ann", BUY, "limit", price, 1, 0, "GTC", "EXPIRE_MAKER", 0)
        await gateway.submit(
            RULES.name, order, "ann", RULES.quote, price * RULES.quote_per_tick_lot
        )
    while entries := await service.store.read_new(service.applied, 1000, None):
        await service._run_batch(token, entries)


@pytest.mark.usefixtures("unfrozen")
async def test_a_recovery_freezes_its_state_and_frees_the_one_it_replaces(
    redis_client: redis.asyncio.Redis,
) -> None:
    service = EngineService(RULES, redis_client, freeze_heap=True)
    token = await service.store.acquire_lease(60_000)
    await service.recover()
    await rest_orders(redis_client, service, token)

    await service.recover()
    assert len(service.engine.orders) == RESTING
    frozen = gc.get_freeze_count()
    assert frozen > RESTING  # the book (an object per order at least) and the imports
    assert gc.get_count()[0] < 100  # the generations start empty

    # A second recovery builds the book again; the first one's is collected, not left frozen.
    await service.recover()
    assert gc.get_freeze_count() < frozen + RESTING // 2


@pytest.mark.usefixtures("unfrozen")
async def test_without_freeze_heap_the_collector_is_left_alone(
    redis_client: redis.asyncio.Redis,
) -> None:
    service = EngineService(RULES, redis_client)
    await service.store.acquire_lease(60_000)
    await service.recover()
    assert gc.get_freeze_count() == 0


@pytest.mark.usefixtures("unfrozen")
async def test_a_snapshot_freezes_what_came_since_the_last_freeze(
    redis_client: redis.asyncio.Redis,
) -> None:
    service = EngineService(RULES, redis_client, freeze_heap=True)
    token = await service.store.acquire_lease(60_000)
    await service.recover()
    before = gc.get_freeze_count()
    await rest_orders(redis_client, service, token)

    await service.snapshot(token)
    child = service._snapshot_child
    assert child is not None
    os.waitpid(child, 0)
    service._snapshot_child = None
    assert gc.get_freeze_count() > before + RESTING
