"""Stop orders and OCO lists through a real engine process and Redis: the commands travel
the wire, triggers commit with the trades that set them off, and Redis balances stay equal
to the reference ledger's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import redis.asyncio

from engine.commands import FundsRequest
from engine.replay import ReplaySession
from ledger.gateway import Gateway
from ledger.locks import list_lock
from tests.harness.engine import EngineProcess, load_rules, place, read_events, wait_applied
from xch.schemas import (
    BUY,
    SELL,
    OrderAccepted,
    OrderDone,
    OrderTriggered,
    OrderType,
    Place,
    PlaceList,
    Side,
    TimeInForce,
)

StartEngine = Callable[..., EngineProcess]


def order(
    order_id: str,
    user: str,
    side: Side,
    kind: OrderType,
    price: int,
    qty: int,
    *,
    tif: TimeInForce = "GTC",
    stop_price: int = 0,
) -> Place:
    return Place(
        order_id, user, side, kind, price, qty, 0, tif, "EXPIRE_MAKER", 0, stop_price=stop_price
    )


async def test_stops_and_lists_trigger_in_the_service_as_in_the_reference(
    redis_client: redis.asyncio.Redis, engines: StartEngine, manifest: Path
) -> None:
    rules = load_rules(manifest)
    engine = engines()
    await engine.wait_ready()
    gateway = Gateway(redis_client)
    reference = ReplaySession(rules)
    for user, asset, amount in [
        ("alice", "BTC", 10**9),
        ("bob", "USD", 10**12),
        ("carol", "BTC", 10**9),
    ]:
        await gateway.deposit(user, asset, amount)
        reference.submit_parsed(FundsRequest(user, asset, amount), "0")
    # a first trade at 30000.00; bids below; alice's stop-loss at 29900.00 and her OCO list
    # (take profit 31000.00 as a limit maker, stop-loss at 29800.00)
    commands: list[Place | PlaceList] = [
        order("b0", "bob", BUY, "limit", 3_000_000, 1000),
        order("s0", "carol", SELL, "limit", 3_000_000, 1000),
        order("b1", "bob", BUY, "limit", 2_990_000, 3000),
        order("b2", "bob", BUY, "limit", 2_980_000, 3000),
        order("x1", "alice", SELL, "stop_loss", 0, 2000, stop_price=2_990_000),
        PlaceList(
            "l1",
            "alice",
            [
                order("la", "alice", SELL, "limit", 3_100_000, 1000, tif="POST_ONLY"),
                order("lb", "alice", SELL, "stop_loss", 0, 1000, stop_price=2_980_000),
            ],
            0,
        ),
        # carol sells into b1 at 29900.00: x1 triggers and sells b1's rest and into b2 at
        # 29800.00, which triggers lb, which expires la
        order("s1", "carol", SELL, "limit", 2_990_000, 2000),
    ]
    ids = []
    for command in commands:
        if isinstance(command, PlaceList):
            amount = list_lock(rules, command.legs)
            entry = await gateway.submit(rules.name, command, "alice", "BTC", amount)
        else:
            entry = await place(gateway, rules, command)
        assert entry is not None
        ids.append(entry)
        reference.submit_parsed(command, "0")
    await wait_applied(redis_client, rules.name, ids[-1])
    events = await read_events(redis_client, rules.name)
    assert [e.order_id for e in events if isinstance(e, OrderTriggered)] == ["x1", "lb"]
    accepted = [e for e in events if isinstance(e, OrderAccepted) and e.list_id == "l1"]
    assert [(e.order_id, e.locked) for e in accepted] == [
        ("la", 1000 * rules.base_per_lot),
        ("lb", 0),
    ]
    done = {e.order_id: (e.status, e.reason) for e in events if isinstance(e, OrderDone)}
    assert done["la"] == ("expired", "oco")
    assert done["x1"] == ("filled", "")
    for user in ("alice", "bob", "carol", "@fees"):
        balances = await gateway.balances(user)
        assert {a: (b.free, b.locked) for a, b in balances.items()} == dict(
            reference.ledger.snapshot()[user]
        )
