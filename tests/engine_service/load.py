"""Load and end-to-end verification for the engine service reliability tests.

`Load` plays many users against one market through the api's lock-and-enqueue path (the
`Gateway` and its Lua scripts), drawing from a seeded `random.Random`, and records every
command it enqueued with its entry id and lock. `verify` then holds what the engine
committed to that record: every command applied exactly once, event seqs gap-free, the
ledger balanced, and the committed events, balances and depth equal to one clean replay of
the same input in a fresh `engine.core.Engine`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import msgspec
import redis.asyncio
import redis.exceptions

from engine.book import BookSide, Order
from engine.core import Engine
from engine.store import InputEntry, MarketStore, stream_id_key
from ledger.gateway import FundsError, Gateway
from ledger.locks import lock_amount, spent_asset
from ledger.reference import Ledger
from tests.harness.engine import read_events
from xch import keys
from xch.market import MarketRules
from xch.schemas import (
    BUY,
    CANCELED,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    POST_ONLY,
    SELL,
    SIDES,
    STP_EXPIRE_BOTH,
    STP_EXPIRE_MAKER,
    STP_EXPIRE_TAKER,
    STP_NONE,
    Cancel,
    CancelAll,
    Command,
    Depth,
    Event,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    Place,
    Side,
    StpMode,
    TimeInForce,
    Trade,
)
from xch.wire import as_text, decode_command

T = TypeVar("T")
UNAVAILABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
MID = 3_000_000
"""30000.00 in ticks of 0.01: the price the load trades around."""
STP_WEIGHTS: tuple[tuple[StpMode, int], ...] = (
    (STP_EXPIRE_MAKER, 6),
    (STP_NONE, 2),
    (STP_EXPIRE_TAKER, 1),
    (STP_EXPIRE_BOTH, 1),
)
Balances = dict[str, dict[str, tuple[int, int]]]


@dataclass(frozen=True, slots=True)
class Submitted:
    """One input entry as the gateway enqueued it: the command and what was locked for it."""

    entry_id: str
    command: Command
    user: str
    asset: str
    locked: int

    @property
    def ts(self) -> int:
        return stream_id_key(self.entry_id)[0]


def submitted_from_input(entry: InputEntry) -> Submitted:
    return Submitted(
        entry.entry_id, decode_command(entry.payload), entry.user, entry.asset, entry.locked
    )


async def read_input(client: redis.asyncio.Redis, market: str) -> list[Submitted]:
    """Every entry still in the market's input stream, in order."""
    store = MarketStore(client, market)
    out: list[Submitted] = []
    cursor = "0-0"
    while chunk := await store.read_range(cursor, "+", 5000):
        out += [submitted_from_input(entry) for entry in chunk]
        cursor = chunk[-1].entry_id
    return out


async def asks_from_depth(client: redis.asyncio.Redis, market: str) -> BookSide:
    """The committed asks (from the depth key) as a BookSide, to size a market buy's lock."""
    asks = BookSide(is_bid=False)
    raw: Any = await client.get(keys.market_depth(market))
    if raw is not None:
        for price, total in msgspec.msgpack.decode(raw)["asks"]:
            asks.add(Order("depth", "depth", SELL, price, total, 0, 0))
    return asks


async def retrying(make: Callable[[], Awaitable[T]], retry_for: float) -> T:
    """`make()`, tried again while Redis is unreachable, for up to `retry_for` seconds."""
    deadline = time.monotonic() + retry_for
    while True:
        try:
            return await make()
        except UNAVAILABLE:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(0.05)


@dataclass
class Load:
    """A seeded stream of deposits, orders and cancels from `users` users, all recorded."""

    client: redis.asyncio.Redis
    rules: MarketRules
    seed: int
    users: int = 50
    funds_moves: bool = False
    """Also deposit more and withdraw now and then while orders flow."""
    retry_for: float = 0.0
    """Retry a Redis call that failed to connect for this long (0: fail at once)."""
    submitted: list[Submitted] = field(default_factory=list)
    deposits: list[tuple[str, str, int]] = field(default_factory=list)
    withdrawals: list[tuple[str, str, int]] = field(default_factory=list)
    refused: int = 0
    """Submits the gateway refused for want of free funds (nothing enqueued)."""

    def __post_init__(self) -> None:
        self.gateway = Gateway(self.client)
        self.rng = random.Random(self.seed)
        self.names = [f"u{n:02d}" for n in range(self.users)]
        self.recent: dict[str, list[str]] = {name: [] for name in self.names}
        self._orders = 0

    @property
    def last_entry_id(self) -> str:
        """The newest entry id (commands submitted concurrently may be recorded unordered)."""
        return max((entry.entry_id for entry in self.submitted), key=stream_id_key)

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        return await retrying(make, self.retry_for)

    # ---- funds --------------------------------------------------------------------------

    async def fund(self, quote: int = 10**11, base: int = 10**8) -> None:
        """Give every user `quote` and `base` minor units (100 000 USD and 1 BTC)."""
        for user in self.names:
            for asset, amount in ((self.rules.quote, quote), (self.rules.base, base)):
                await self.deposit(user, asset, amount)

    async def deposit(self, user: str, asset: str, amount: int) -> None:
        await self._call(partial(self.gateway.deposit, user, asset, amount))
        self.deposits.append((user, asset, amount))

    async def withdraw(self, user: str, asset: str, amount: int) -> bool:
        try:
            await self._call(partial(self.gateway.withdraw, user, asset, amount))
        except FundsError:
            return False
        self.withdrawals.append((user, asset, amount))
        return True

    # ---- commands -----------------------------------------------------------------------

    async def place(self, order: Place) -> str | None:
        """Lock what `order` needs, as the api does, and enqueue it; its entry id or None."""
        rules = self.rules
        if order.type == MARKET and order.side == BUY and not order.quote_qty:
            asks = await self._call(partial(asks_from_depth, self.client, rules.name))
        else:
            asks = BookSide(is_bid=False)
        amount = lock_amount(rules, order, asks.totals())
        asset = spent_asset(rules, order.side)
        entry_id = await self._call(
            partial(self.gateway.submit, rules.name, order, order.user, asset, amount)
        )
        if entry_id is None:
            self.refused += 1
            return None
        self.submitted.append(
            Submitted(entry_id, order, order.user, asset if amount else "", amount)
        )
        recent = self.recent.setdefault(order.user, [])
        recent.append(order.order_id)
        del recent[:-20]
        return entry_id

    async def submit(self, command: Command, user: str) -> str:
        """Enqueue a command that locks nothing (cancel, cancel_all, set_trading, close)."""
        entry_id = await self._call(partial(self.gateway.submit, self.rules.name, command, user))
        assert entry_id is not None
        self.submitted.append(Submitted(entry_id, command, user, "", 0))
        return entry_id

    def order_id(self) -> str:
        self._orders += 1
        return f"o{self.seed}-{self._orders}"

    def limit(
        self, user: str, side: Side, tif: TimeInForce = GTC, price: int | None = None, qty: int = 0
    ) -> Place:
        rng = self.rng
        if price is None:
            offset = rng.randint(-40, 10) if side == BUY else rng.randint(-10, 40)
            price = MID + offset
        stp = rng.choices([m for m, _ in STP_WEIGHTS], [w for _, w in STP_WEIGHTS])[0]
        qty = qty or rng.randint(1, 20)
        return Place(self.order_id(), user, side, LIMIT, price, qty, 0, tif, stp, 0)

    def market(self, user: str, side: Side, qty: int = 0, quote_qty: int = 0) -> Place:
        if not quote_qty:
            qty = qty or self.rng.randint(1, 30)
        return Place(self.order_id(), user, side, MARKET, 0, qty, quote_qty, IOC, STP_NONE, 0)

    async def step(self) -> None:
        """One random action of one random user."""
        rng = self.rng
        user = rng.choice(self.names)
        side = rng.choice(SIDES)
        roll = rng.random()
        if roll < 0.42:
            await self.place(self.limit(user, side))
        elif roll < 0.50:
            await self.place(self.limit(user, side, IOC))
        elif roll < 0.53:
            await self.place(self.limit(user, side, POST_ONLY))
        elif roll < 0.55:
            await self.place(self.limit(user, side, FOK))
        elif roll < 0.65:
            await self.place(self.market(user, side))
        elif roll < 0.68:
            await self.place(self.market(user, BUY, quote_qty=rng.randint(10**6, 10**8)))
        elif roll < 0.88:
            await self.submit(Cancel(self._cancel_target(user), user), user)
        elif roll < 0.91:
            await self.submit(CancelAll(user), user)
        elif roll < 0.93 and self.funds_moves:
            asset = rng.choice((self.rules.base, self.rules.quote))
            if rng.random() < 0.5:
                await self.deposit(user, asset, rng.randint(1, 10**9))
            else:
                await self.withdraw(user, asset, rng.randint(1, 10**9))
        else:
            await self.place(self.limit(user, side))

    def _cancel_target(self, user: str) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.05:
            return "no-such-order"
        owner = rng.choice(self.names) if roll < 0.15 else user  # another user's order now and then
        recent = self.recent.get(owner) or ["no-such-order"]
        return rng.choice(recent)

    async def run(self, stop: asyncio.Event, pause: float = 0.0, limit: int = 10**9) -> None:
        """Steps until `stop` is set or `limit` commands were enqueued, `pause` s apart on
        average."""
        while not stop.is_set() and len(self.submitted) < limit:
            await self.step()
            await asyncio.sleep(self.rng.uniform(0, 2 * pause) if pause else 0)


# ---- verification ---------------------------------------------------------------------------


@dataclass
class Verified:
    events: list[Event]
    replay: Engine
    ledger: Ledger


def apply_entry(engine: Engine, entry: Submitted) -> None:
    """Feed one input entry to an engine the way the service does for well-formed ones."""
    command = entry.command
    if isinstance(command, Place):
        assert command.user == entry.user, entry
        assert entry.locked == 0 or entry.asset == spent_asset(engine.rules, command.side), entry
        engine.place_locked(command, entry.locked, entry.entry_id, entry.ts)
    else:
        assert entry.locked == 0, entry
        engine.process(command, entry.entry_id, entry.ts)


def replay(
    rules: MarketRules, entries: Sequence[Submitted], batch_ends: set[str], upto: str | None = None
) -> tuple[Engine, list[Event]]:
    """A fresh engine fed `entries` in entry id order (up to and including `upto`), depth
    flushed after each entry in `batch_ends`; the engine and its events."""
    engine = Engine(rules)
    for entry in sorted(entries, key=lambda entry: stream_id_key(entry.entry_id)):
        apply_entry(engine, entry)
        if entry.entry_id in batch_ends:
            engine.flush_depth(entry.entry_id, entry.ts)
        if entry.entry_id == upto:
            break
    return engine, engine.take_events()


def assert_same_events(committed: Sequence[Event], replayed: Sequence[Event]) -> None:
    for n, (actual, expected) in enumerate(zip(committed, replayed, strict=False)):
        assert actual == expected, f"event {n}:\ncommitted {actual!r}\nreplayed  {expected!r}"
    assert len(committed) == len(replayed), (len(committed), len(replayed))


def without_zeros(balances: Balances) -> Balances:
    cleaned = {
        user: {asset: cell for asset, cell in assets.items() if cell != (0, 0)}
        for user, assets in balances.items()
    }
    return {user: assets for user, assets in cleaned.items() if assets}


async def redis_balances(client: redis.asyncio.Redis) -> Balances:
    """Every balance hash (xch:bal:*) as {user: {asset: (free, locked)}}."""
    prefix = keys.balances("")
    out: Balances = {}
    async for key in client.scan_iter(match=keys.balances("*"), count=1000):
        cells: dict[str, list[int]] = {}
        raw: Any = await client.hgetall(key)
        for name, value in raw.items():
            asset, _, part = as_text(name).rpartition(":")
            cells.setdefault(asset, [0, 0])[0 if part == "free" else 1] = int(value)
        out[as_text(key)[len(prefix) :]] = {a: (f, lk) for a, (f, lk) in cells.items()}
    return out


async def supply(client: redis.asyncio.Redis) -> dict[str, int]:
    raw: Any = await client.hgetall(keys.SUPPLY)
    return {as_text(asset): int(total) for asset, total in raw.items()}


async def assert_ledger_balanced(client: redis.asyncio.Redis) -> Balances:
    """Per asset, free + locked over all balance hashes equals the supply; none negative."""
    balances = await redis_balances(client)
    totals: Counter[str] = Counter()
    for user, assets in balances.items():
        for asset, (free, locked) in assets.items():
            assert free >= 0 and locked >= 0, (user, asset, free, locked)
            totals[asset] += free + locked
    assert {a: t for a, t in totals.items() if t} == {
        a: t for a, t in (await supply(client)).items() if t
    }
    return balances


def check_exactly_once(entries: Sequence[Submitted], events: Sequence[Event]) -> None:
    """Each input entry applied once: its decision events exist once; seqs gap-free."""
    ids = [entry.entry_id for entry in entries]
    assert len(set(ids)) == len(ids), "an entry id was recorded twice"
    seqs = [event.seq for event in events]
    duplicated = [seq for seq, n in Counter(seqs).items() if n > 1]
    assert not duplicated, f"seqs committed more than once: {duplicated[:20]}"
    assert seqs == list(range(1, len(events) + 1)), "event seqs are not gap-free from 1"
    known = set(ids)
    touched = {event.input_id for event in events if not isinstance(event, Depth)}
    assert touched <= known, f"events of unknown inputs: {sorted(touched - known)[:10]}"
    assert {e.input_id for e in events if isinstance(e, Depth)} <= known
    silent = [e for e in entries if e.entry_id not in touched]
    assert all(isinstance(e.command, CancelAll) for e in silent), silent[:5]
    # a place is accepted or rejected, once; a cancel cancels or is rejected, once
    decided: Counter[str] = Counter()
    canceled: Counter[str] = Counter()
    for event in events:
        if isinstance(event, OrderAccepted | OrderRejected):
            decided[event.input_id] += 1
        elif isinstance(event, OrderDone) and event.status == CANCELED:
            canceled[event.input_id] += 1
    for entry in entries:
        if isinstance(entry.command, Place):
            assert decided[entry.entry_id] == 1, entry
            assert canceled[entry.entry_id] == 0, entry
        elif isinstance(entry.command, Cancel):
            assert decided[entry.entry_id] + canceled[entry.entry_id] == 1, entry


async def verify(
    client: redis.asyncio.Redis,
    rules: MarketRules,
    entries: Sequence[Submitted],
    deposits: Sequence[tuple[str, str, int]],
    withdrawals: Sequence[tuple[str, str, int]] = (),
    depth_levels: int = 500,
) -> Verified:
    """Everything committed for `rules.name` against one clean replay of `entries`."""
    market = rules.name
    entries = sorted(entries, key=lambda entry: stream_id_key(entry.entry_id))
    applied = await client.get(keys.market_applied(market))
    assert applied is not None and as_text(applied) == entries[-1].entry_id
    events = await read_events(client, market)
    check_exactly_once(entries, events)

    # the clean replay, with the committed batch boundaries (where depth was flushed)
    batch_ends = {event.input_id for event in events if isinstance(event, Depth)}
    engine, replayed = replay(rules, entries, batch_ends)
    assert_same_events(events, replayed)

    # every accepted order ended exactly once, or rests in the replayed book
    accepted = Counter(e.order_id for e in events if isinstance(e, OrderAccepted))
    done = Counter(e.order_id for e in events if isinstance(e, OrderDone))
    for order_id, n in accepted.items():
        assert done[order_id] + (order_id in engine.orders) == n, order_id
    assert set(done) <= set(accepted)

    # balances: the reference ledger fed the deposits, the locks and the committed events
    ledger = Ledger([rules])
    for user, asset, amount in deposits:
        ledger.deposit(user, asset, amount)
    by_input: defaultdict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_input[event.input_id].append(event)
    for entry in entries:
        if entry.locked:
            assert ledger.lock(entry.user, entry.asset, entry.locked), entry
        ledger.apply_all(by_input.get(entry.entry_id, ()))
    for user, asset, amount in withdrawals:
        assert ledger.withdraw(user, asset, amount), (user, asset, amount)
    balances = await assert_ledger_balanced(client)
    assert without_zeros(balances) == without_zeros(ledger.snapshot())
    assert {a: t for a, t in (await supply(client)).items() if t} == {
        a: t for a, t in ledger.net_deposits.items() if t
    }

    # what stays locked is exactly what the resting orders hold
    held: Counter[tuple[str, str]] = Counter()
    for order in engine.orders.values():
        per_lot = (
            rules.quote_per_tick_lot * order.price if order.side == BUY else rules.base_per_lot
        )
        assert order.locked == order.remaining * per_lot, order
        held[order.user, spent_asset(rules, order.side)] += order.locked
    locked = {
        (user, asset): cell[1]
        for user, assets in balances.items()
        for asset, cell in assets.items()
        if cell[1]
    }
    assert locked == {key: amount for key, amount in held.items() if amount}

    # the depth key is the replayed book's top levels
    raw: Any = await client.get(keys.market_depth(market))
    if raw is None:
        assert not engine.bids.levels and not engine.asks.levels
    else:
        depth = msgspec.msgpack.decode(raw)
        assert depth["last_update_id"] == engine.depth_update_id
        for name, side in (("bids", engine.bids), ("asks", engine.asks)):
            assert len(depth[name]) == min(depth_levels, len(side.levels))
            assert [tuple(level) for level in depth[name]] == side.depth(depth_levels)
    return Verified(events, engine, ledger)


def trades_after(events: Sequence[Event], entry_id: str) -> list[Trade]:
    """The trades of input entries after `entry_id`."""
    after = stream_id_key(entry_id)
    return [e for e in events if isinstance(e, Trade) and stream_id_key(e.input_id) > after]
