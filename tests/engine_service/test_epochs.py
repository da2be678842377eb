"""Every events entry names the engine epoch that committed it (xch.wire.Epoch): a new epoch
at each recovery, later than the one of the stream's last entry, with the seq and trade id its
state resumed from (docs/storage.md, "Redis rollback")."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.asyncio

from ledger.gateway import Gateway
from tests.engine_service.load import MID
from tests.harness.engine import EngineProcess, load_rules, place, wait_applied
from xch import keys
from xch.schemas import BUY, GTC, LIMIT, SELL, STP_NONE, Place, Side
from xch.wire import FIELD_EPOCH, FIELD_EVENT, Epoch, decode_events


async def entries(client: redis.asyncio.Redis, market: str) -> list[tuple[Epoch, int]]:
    """Each events entry's epoch and its last seq."""
    raw: Any = await client.xrange(keys.market_events(market))
    return [
        (Epoch.decode(fields[FIELD_EPOCH]), decode_events(fields[FIELD_EVENT])[-1].seq)
        for _, fields in raw
    ]


async def test_each_recovery_draws_a_later_epoch_that_names_where_it_resumed(
    redis_client: redis.asyncio.Redis,
    engines: Callable[..., EngineProcess],
    manifest: Path,
) -> None:
    rules = load_rules(manifest)
    gateway = Gateway(redis_client)
    for user, asset in (("buyer", rules.quote), ("seller", rules.base)):
        await gateway.deposit(user, asset, 10**12)

    async def trade(n: int) -> None:
        sides: tuple[tuple[Side, str], ...] = ((SELL, "seller"), (BUY, "buyer"))
        for side, user in sides:
            order = Place(f"{user}-{n}", user, side, LIMIT, MID, 1, 0, GTC, STP_NONE, 0)
            entry = await place(gateway, rules, order)
            assert entry is not None
            await wait_applied(redis_client, rules.name, entry)

    engine = engines()
    await engine.wait_ready()
    await trade(1)
    first = await entries(redis_client, rules.name)
    engine.kill()
    engine = engines()
    await engine.wait_ready()
    await trade(2)
    both = await entries(redis_client, rules.name)

    epoch, last_seq = both[len(first) - 1]
    assert epoch == Epoch(epoch.epoch, 0, 0, 0)  # the first: from nothing
    assert {e for e, _ in first} == {epoch}
    later = {e for e, _ in both[len(first) :]}
    assert len(later) == 1
    (resumed,) = later
    assert resumed.epoch > epoch.epoch
    assert resumed == Epoch(resumed.epoch, epoch.epoch, last_seq, 1)
