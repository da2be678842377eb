"""What the hand-computed scenarios of the engine core (docs/engine.md) share: the markets,
the expected events and the harness. The scenarios are the test modules beside this one.

Most tests use a small market with easy numbers, ABC/XYZ:

    base ABC scale 2, quote XYZ scale 2, tickSize "1", lotSize "1", makerBps 10, takerBps 20
    1 lot = 1.00 ABC = 100 ABC minor units          (base_per_lot = 100)
    1 tick x 1 lot = 1.00 XYZ = 100 XYZ minor units  (quote_per_tick_lot = 100)
    n lots at p ticks cost p * n * 100 XYZ minor units

so fees are, rounded up to the minor unit:
    buyer's fee (ABC) = ceil(n * 100 * bps / 10000): taker ceil(n / 5), maker ceil(n / 10)
    seller's fee (XYZ) = ceil(p * n * 100 * bps / 10000): taker ceil(p*n / 5), maker ceil(p*n / 10)

Every command goes through `engine.replay.ReplaySession` (the api's locking, the engine, the
reference ledger) unless the test is about the engine alone. After every command the harness
checks the sequence numbers (gap-free from 1) and the invariants of docs/engine.md: ledger
conservation, no negative balance, every resting order live (> 0 lots) and on its level, each
holding exactly price * remaining * 100 (buy) or remaining * 100 (sell), and every lock in the
ledger belonging to a resting order. Expected events are written with seq, input_id and ts
zeroed (`norm`), except depth events, whose update ids are seqs.
"""

from pathlib import Path
from typing import Any

import msgspec
import yaml

from engine.book import Order
from engine.commands import FundsRequest
from engine.core import Engine
from engine.replay import ReplaySession
from engine.snapshot import engine_state
from engine.stops import reached
from ledger.locks import lock_amount, spent_asset
from ledger.reference import Ledger
from xch.market import Market, MarketRules
from xch.schemas import (
    BUY,
    CANCELED,
    DEFAULT_STP,
    EXPIRED,
    FILLED,
    GTC,
    LIMIT,
    REASON_NONE,
    REASON_USER,
    Cancel,
    CancelAll,
    Event,
    MarketState,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderType,
    Place,
    PlaceList,
    ResultCode,
    SetTrading,
    Side,
    StpMode,
    TimeInForce,
    Trade,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "markets" / "btc-usd.yaml"
M = "abc-xyz"

Balances = dict[str, dict[str, tuple[int, int]]]


def make_rules(**spec: Any) -> MarketRules:
    data: dict[str, Any] = {
        "base": {"asset": "ABC", "scale": 2},
        "quote": {"asset": "XYZ", "scale": 2},
        "tickSize": "1",
        "lotSize": "1",
        "fees": {"makerBps": 10, "takerBps": 20},
    }
    data.update(spec)
    return Market.model_validate({"metadata": {"name": M}, "spec": data}).rules()


EASY = make_rules()
BTC_USD = Market.model_validate(yaml.safe_load(EXAMPLE.read_text())).rules()


# ---- expected events (seq, input_id and ts zeroed) --------------------------------------------


def accepted(
    order_id: str,
    user: str,
    side: Side,
    price: int,
    qty: int,
    locked: int,
    *,
    type: OrderType = LIMIT,
    tif: TimeInForce = GTC,
    stp: StpMode = DEFAULT_STP,
    quote_qty: int = 0,
    market: str = M,
) -> OrderAccepted:
    return OrderAccepted(
        market, 0, "", 0, order_id, user, side, type, tif, stp, price, qty, quote_qty, locked
    )


def rejected(
    order_id: str,
    user: str,
    side: str,
    code: ResultCode,
    unlocked: int = 0,
    *,
    op: str = "place",
    market: str = M,
) -> OrderRejected:
    return OrderRejected(
        market, 0, "", 0, order_id, user, side, op, int(code), code.reason, unlocked
    )


def trade(
    trade_id: int,
    price: int,
    qty: int,
    quote: int,
    maker: tuple[str, str],
    taker: tuple[str, str],
    taker_side: Side,
    maker_fee: int,
    taker_fee: int,
    taker_unlocked: int = 0,
    *,
    market: str = M,
) -> Trade:
    """maker and taker are (order id, user)."""
    return Trade(
        market,
        0,
        "",
        0,
        trade_id,
        price,
        qty,
        quote,
        maker[0],
        maker[1],
        taker[0],
        taker[1],
        taker_side,
        maker_fee,
        taker_fee,
        taker_unlocked,
    )


def filled(
    order_id: str, user: str, side: Side, qty: int, unlocked: int, *, market: str = M
) -> OrderDone:
    return OrderDone(market, 0, "", 0, order_id, user, side, FILLED, REASON_NONE, qty, unlocked)


def expired(
    order_id: str, user: str, side: Side, reason: str, qty: int, unlocked: int
) -> OrderDone:
    return OrderDone(M, 0, "", 0, order_id, user, side, EXPIRED, reason, qty, unlocked)


def canceled(order_id: str, user: str, side: Side, qty: int, unlocked: int) -> OrderDone:
    return OrderDone(M, 0, "", 0, order_id, user, side, CANCELED, REASON_USER, qty, unlocked)


def state(trading: str) -> MarketState:
    return MarketState(market=M, seq=0, input_id="", ts=0, trading=trading, reason="")


def fields(order: Order) -> tuple[str, str, str, int, int, int, int]:
    return (
        order.order_id,
        order.user,
        order.side,
        order.price,
        order.remaining,
        order.locked,
        order.filled,
    )


def norm(event: Event) -> Event:
    return msgspec.structs.replace(event, seq=0, input_id="", ts=0)


# ---- the harness --------------------------------------------------------------------------


def check_invariants(engine: Engine, ledger: Ledger) -> None:
    """docs/engine.md's invariants, for a ledger that serves this one market only."""
    rules = engine.rules
    for asset, total in ledger.totals().items():
        assert total == ledger.net_deposits.get(asset, 0), f"{asset} not conserved"
    for user, assets in ledger.accounts.items():
        for asset, (free, locked) in assets.items():
            assert free >= 0 and locked >= 0, (user, asset, free, locked)
    live = 0
    for side in (engine.bids, engine.asks):
        assert set(side.prices()) == set(side.levels)
        assert side.best == next(side.prices(), None)
        for price, level in side.levels.items():
            orders = [order for order in level.orders if order.remaining]
            assert orders, f"empty level {price} left in the book"
            assert level.live == len(orders)
            assert level.total == sum(order.remaining for order in orders)
            for order in orders:
                assert order.price == price
                assert engine.orders[order.order_id] is order
            live += len(orders)
    assert live == len(engine.orders)
    assert sum(len(mine) for mine in engine.by_user.values()) == len(engine.orders)
    held: dict[tuple[str, str], int] = {}
    for order in engine.orders.values():
        assert order.remaining > 0, f"dust order {order!r}"
        assert engine.by_user[order.user][order.order_id] is order
        if order.side == BUY:
            asset, needs = rules.quote, order.price * order.remaining * rules.quote_per_tick_lot
        else:
            asset, needs = rules.base, order.remaining * rules.base_per_lot
        if order.order_id not in engine.siblings:
            assert order.locked == needs, f"{order!r} holds {order.locked}, needs {needs}"
        held[(order.user, asset)] = held.get((order.user, asset), 0) + order.locked
    check_stops(engine, held)
    for user, assets in ledger.accounts.items():
        for asset, (_, locked) in assets.items():
            assert locked == held.get((user, asset), 0), f"{user} {asset} locked {locked}"


def check_stops(engine: Engine, held: dict[tuple[str, str], int]) -> None:
    """Waiting stops: none the last price reached is left, each holds what the order it
    becomes needs, the two legs of an OCO list together what the list locked; adds what
    they hold to `held`."""
    rules = engine.rules
    stops = engine.stops
    assert len(stops.rising) + len(stops.falling) == len(stops.by_id) == len(stops.by_arrival)
    assert sum(len(mine) for mine in stops.by_user.values()) == len(stops.by_id)
    for stop in stops.by_id.values():
        assert not reached(stop.order, engine.last_price), f"{stop.order_id} should have triggered"
        assert stop.need == lock_amount(rules, stop.order)
        if stop.order_id not in engine.siblings:
            assert stop.locked == stop.need, f"{stop.order_id} holds {stop.locked}"
        key = (stop.user, spent_asset(rules, stop.order.side))
        held[key] = held.get(key, 0) + stop.locked
    for leg, other in engine.siblings.items():
        assert engine.siblings[other] == leg
        holds = [_held_and_needed(engine, order_id) for order_id in (leg, other)]
        assert sum(hold for hold, _ in holds) == max(need for _, need in holds)
        assert min(hold for hold, _ in holds) >= 0


def _held_and_needed(engine: Engine, order_id: str) -> tuple[int, int]:
    """What an OCO leg holds and what it would need alone: an unfilled limit or a stop."""
    rules = engine.rules
    order = engine.orders.get(order_id)
    if order is None:
        stop = engine.stops.by_id[order_id]
        return stop.locked, stop.need
    assert order.filled == 0, "a list whose limit leg filled must have ended"
    if order.side == BUY:
        return order.locked, order.price * order.remaining * rules.quote_per_tick_lot
    return order.locked, order.remaining * rules.base_per_lot


class Harness:
    """A replay session with a running input counter and checks after every command."""

    def __init__(self, rules: MarketRules = EASY) -> None:
        self.rules = rules
        self.session = ReplaySession(rules)
        self.engine = self.session.engine
        self.ledger = self.session.ledger
        self.inputs = 0
        self.seq = 0

    @property
    def input_id(self) -> str:
        return f"in-{self.inputs}"

    def deposit(self, user: str, base: int = 0, quote: int = 0) -> None:
        """Fund `user` (minor units) directly in the ledger: no event, no seq."""
        if base:
            self.ledger.deposit(user, self.rules.base, base)
        if quote:
            self.ledger.deposit(user, self.rules.quote, quote)

    def raw(self, command: Any) -> list[Event]:
        """Submit a JSON-like dict (or a parsed command) and return its events as emitted."""
        self.inputs += 1
        if isinstance(command, Place | PlaceList | Cancel | CancelAll | SetTrading | FundsRequest):
            self.session.submit_parsed(command, self.input_id, self.inputs)
        else:
            self.session.submit(command, self.input_id, self.inputs)
        return self._take()

    def submit(self, command: Any) -> list[Event]:
        return [norm(event) for event in self.raw(command)]

    def place(
        self,
        order_id: str,
        user: str,
        side: Side,
        price: int = 0,
        qty: int = 0,
        *,
        type: OrderType = LIMIT,
        tif: TimeInForce = GTC,
        stp: StpMode = DEFAULT_STP,
        quote_qty: int = 0,
    ) -> list[Event]:
        return self.submit(Place(order_id, user, side, type, price, qty, quote_qty, tif, stp, 0))

    def cancel(self, order_id: str, user: str) -> list[Event]:
        return self.submit(Cancel(order_id, user))

    def cancel_all(self, user: str) -> list[Event]:
        return self.submit(CancelAll(user))

    def end_batch(self) -> list[Event]:
        """flush_depth; returned as emitted (depth update ids are seqs)."""
        self.session.end_batch(self.input_id, self.inputs)
        return self._take()

    def _take(self) -> list[Event]:
        events = self.engine.take_events()
        for event in events:
            assert event.seq == self.seq + 1, "seq must be gap-free"
            assert (event.input_id, event.ts) == (self.input_id, self.inputs)
            self.seq = event.seq
        check_invariants(self.engine, self.ledger)
        return events

    def balances(self) -> Balances:
        """Every account's non-zero (free, locked) balances."""
        out: Balances = {}
        for user, assets in self.ledger.snapshot().items():
            cells = {asset: cell for asset, cell in assets.items() if cell != (0, 0)}
            if cells:
                out[user] = cells
        return out

    def book(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return self.engine.bids.depth(), self.engine.asks.depth()

    def resting(self) -> dict[str, tuple[int, int, int]]:
        """{order id: (remaining lots, locked, filled lots)} in placement order."""
        return {o.order_id: (o.remaining, o.locked, o.filled) for o in self.engine.orders.values()}

    def state(self) -> tuple[dict[str, Any], Balances]:
        """The engine's state without its seq, and every ledger balance."""
        engine = engine_state(self.engine)
        del engine["seq"]
        return engine, self.ledger.snapshot()
