"""Snapshots and recovery, and the market's trading state through the input stream.

Snapshots bound the input a recovery replays: the input and batch records they cover are
dropped, a kill -9 after them recovers from snapshot + replay, and the book carries on as
one clean replay of everything says. Halt, resume and close travel the input stream like
orders: halted, places are refused with their locks given back while cancels still work;
closed, every open order is canceled and every balance ends fully free.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import redis.asyncio

from engine.snapshot import engine_state, load_engine
from engine.store import MarketStore, Snapshot, stream_id_key
from tests.engine_service.load import (
    MID,
    Load,
    redis_balances,
    replay,
    trades_after,
    verify,
)
from tests.harness.engine import EngineProcess, load_rules, read_events, wait_applied
from tests.harness.processes import http_get
from xch import keys
from xch.schemas import (
    BUY,
    CANCELED,
    GTC,
    LIMIT,
    SELL,
    STP_EXPIRE_MAKER,
    Cancel,
    Close,
    Depth,
    Event,
    MarketState,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    Place,
    SetTrading,
    Side,
    Trade,
)

StartEngine = Callable[..., EngineProcess]


async def settled_snapshot(
    client: redis.asyncio.Redis, store: MarketStore, timeout: float = 10
) -> Snapshot:
    """The snapshot once the snapshot child caught up: input trimmed well below 200."""
    deadline = time.monotonic() + timeout
    while True:
        snapshot = await store.load_snapshot()
        if snapshot is not None and await client.xlen(store.input) < 200:
            return snapshot
        assert time.monotonic() < deadline, "no snapshot trimmed the input"
        await asyncio.sleep(0.05)


async def test_snapshots_trim_the_input_and_a_restart_carries_on_the_book(
    redis_client: redis.asyncio.Redis, engines: StartEngine, manifest: Path
) -> None:
    rules = load_rules(manifest)
    env = {"EXCHANGE_ENGINE_SNAPSHOT_EVERY": "100", "EXCHANGE_ENGINE_BATCH_MAX": "50"}
    engine = engines(env)
    await engine.wait_ready()
    load = Load(redis_client, rules, seed=41, users=20)
    await load.fund()
    await load.run(asyncio.Event(), limit=1000)
    await wait_applied(redis_client, rules.name, load.last_entry_id)
    store = MarketStore(redis_client, rules.name)
    snapshot = await settled_snapshot(redis_client, store)

    # the snapshot dropped the input and the batch records it covers
    assert await redis_client.xlen(store.input) < 200
    records = await store.batches()
    assert len(records) < 100
    after = stream_id_key(snapshot.input_id)
    assert all(stream_id_key(record.last_input_id) > after for record in records)
    # and it is exactly the state a clean replay reaches at its input id
    events = await read_events(redis_client, rules.name)
    batch_ends = {e.input_id for e in events if isinstance(e, Depth)}
    at_snapshot, _ = replay(rules, load.submitted, batch_ends, upto=snapshot.input_id)
    assert snapshot.seq == at_snapshot.seq
    assert engine_state(load_engine(rules, snapshot.state)) == engine_state(at_snapshot)

    # kill -9, restart: it recovers from snapshot + replay, with the whole book
    book, _ = replay(rules, load.submitted, batch_ends)
    assert len(book.orders) > 20
    engine.kill()
    engine = engines(env)
    await engine.wait_ready()
    status, metrics = await http_get(engine.health_port, "/metrics")
    assert status == 200
    assert f"engine_book_orders {float(len(book.orders))}".encode() in metrics
    restarted_at = load.last_entry_id

    # orders after the restart trade against the book from before it, as the replay says
    for n, user in enumerate(load.names[:6]):
        await load.place(load.market(user, BUY if n % 2 else SELL, qty=60))
    await load.run(asyncio.Event(), limit=1300)
    await wait_applied(redis_client, rules.name, load.last_entry_id)
    verified = await verify(redis_client, rules, load.submitted, load.deposits)
    before = {
        e.order_id
        for e in verified.events
        if isinstance(e, OrderAccepted) and e.order_id in book.orders
    }
    makers = {t.maker_order for t in trades_after(verified.events, restarted_at)}
    assert len(makers & before) >= 5


def limit(order_id: str, user: str, side: Side, price: int, qty: int) -> Place:
    return Place(order_id, user, side, LIMIT, price, qty, 0, GTC, STP_EXPIRE_MAKER, 0)


async def test_halt_resume_and_close_through_the_input(
    redis_client: redis.asyncio.Redis, engines: StartEngine, manifest: Path
) -> None:
    rules = load_rules(manifest)
    engine = engines()
    await engine.wait_ready()
    load = Load(redis_client, rules, seed=42, users=3)
    await load.fund()
    ann, ben, cat = load.names
    quote, base = rules.quote, rules.base

    async def events_of(entry_id: str | None) -> list[Event]:
        assert entry_id is not None
        await wait_applied(redis_client, rules.name, entry_id)
        events = await read_events(redis_client, rules.name)
        return [e for e in events if e.input_id == entry_id and not isinstance(e, Depth)]

    async def free_and_locked(user: str, asset: str) -> tuple[int, int]:
        return (await redis_balances(redis_client)).get(user, {}).get(asset, (0, 0))

    await load.place(limit("a1", ann, BUY, MID - 10, 5))
    await load.place(limit("b1", ben, SELL, MID + 10, 5))
    await load.place(limit("c1", cat, BUY, MID - 20, 7))

    for state in ("Halted", "CancelOnly"):
        halt = await load.submit(SetTrading(state), "operator")
        assert [(type(e), getattr(e, "trading", "")) for e in await events_of(halt)] == [
            (MarketState, state)
        ]
        ann_usd = await free_and_locked(ann, quote)
        refused = await load.place(limit(f"a-{state}", ann, BUY, MID + 50, 3))
        (rejected,) = await events_of(refused)
        assert isinstance(rejected, OrderRejected)
        assert rejected.reason == "market_halted"
        assert rejected.unlocked == (MID + 50) * 3 * rules.quote_per_tick_lot
        assert await free_and_locked(ann, quote) == ann_usd  # the lock came back
    # cancels still work while trading is off
    ben_btc = await free_and_locked(ben, base)
    (canceled,) = await events_of(await load.submit(Cancel("b1", ben), ben))
    assert isinstance(canceled, OrderDone)
    assert (canceled.status, canceled.reason) == (CANCELED, "user")
    assert canceled.unlocked == 5 * rules.base_per_lot
    assert await free_and_locked(ben, base) == (ben_btc[0] + ben_btc[1], 0)

    # resumed: places work again, and trade
    await events_of(await load.submit(SetTrading("Enabled"), "operator"))
    traded = await events_of(await load.place(limit("b2", ben, SELL, MID - 10, 2)))
    assert [type(e) for e in traded] == [OrderAccepted, Trade, OrderDone]
    await load.place(limit("b3", ben, SELL, MID + 30, 4))
    await load.place(limit("c2", cat, SELL, MID + 40, 1))

    # closed: every open order canceled, oldest first, then halted for good
    closing = await events_of(await load.submit(Close(), "operator"))
    done = [e for e in closing if isinstance(e, OrderDone)]
    assert [e.order_id for e in done] == ["a1", "c1", "b3", "c2"]
    assert all((e.status, e.reason) == (CANCELED, "market_closed") for e in done)
    (state_event,) = [e for e in closing if isinstance(e, MarketState)]
    assert closing[-1] == state_event
    assert (state_event.trading, state_event.reason) == ("Halted", "closed")
    balances = await redis_balances(redis_client)
    assert all(locked == 0 for assets in balances.values() for _, locked in assets.values())
    refused = await load.place(limit("late", cat, BUY, MID, 1))
    (late,) = await events_of(refused)
    assert isinstance(late, OrderRejected) and late.reason == "market_halted"

    # a restart recovers the closed state
    engine.kill()
    await redis_client.delete(keys.market_lease(rules.name))
    engine = engines()
    await engine.wait_ready()
    after = await load.place(limit("later", ann, SELL, MID, 1))
    (later,) = await events_of(after)
    assert isinstance(later, OrderRejected) and later.reason == "market_halted"
    balances = await redis_balances(redis_client)
    assert all(locked == 0 for assets in balances.values() for _, locked in assets.values())
    verified = await verify(redis_client, rules, load.submitted, load.deposits)
    assert not verified.replay.orders
