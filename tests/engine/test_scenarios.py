"""Hand-computed scenarios for the engine core (docs/engine.md): exact events and balances.

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
from typing import Any, cast

import msgspec
import pytest
import yaml

from engine.book import Order
from engine.commands import FundsRequest
from engine.core import Engine
from engine.replay import ReplaySession, event_json
from engine.snapshot import (
    SnapshotError,
    dump_engine,
    dump_ledger,
    engine_state,
    load_engine,
    load_ledger,
    state_hash,
)
from engine.stops import reached
from ledger.locks import cost_to_buy, lock_amount, spent_asset
from ledger.reference import Ledger
from xch.market import Market, MarketRules
from xch.schemas import (
    BUY,
    CANCELED,
    DEFAULT_STP,
    EXPIRED,
    FEE_ACCOUNT,
    FILLED,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    POST_ONLY,
    REASON_NONE,
    REASON_SELF_TRADE,
    REASON_TIME_IN_FORCE,
    REASON_USER,
    SELL,
    STP_EXPIRE_BOTH,
    STP_EXPIRE_MAKER,
    STP_EXPIRE_TAKER,
    STP_NONE,
    Cancel,
    CancelAll,
    Depth,
    Event,
    Funds,
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

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "markets" / "btc-usd.yaml"
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


def test_the_easy_market_has_easy_numbers() -> None:
    assert (EASY.base_per_lot, EASY.quote_per_tick_lot, EASY.min_notional) == (100, 100, 0)
    assert (EASY.maker_bps, EASY.taker_bps) == (10, 20)
    assert (BTC_USD.base_per_lot, BTC_USD.quote_per_tick_lot) == (10_000, 1)
    assert BTC_USD.min_notional == 1_000_000


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


# ---- order types ----------------------------------------------------------------------------


def test_limit_gtc_rests() -> None:
    h = Harness()
    h.deposit("alice", quote=100_000)
    h.deposit("sam", base=500)
    # buy 3 @ 100 locks 100 * 3 * 100 = 30000 XYZ
    assert h.place("b1", "alice", BUY, 100, 3) == [accepted("b1", "alice", BUY, 100, 3, 30_000)]
    # sell 2 @ 110 locks 2 * 100 = 200 ABC; it does not cross the bid at 100
    assert h.place("s1", "sam", SELL, 110, 2) == [accepted("s1", "sam", SELL, 110, 2, 200)]
    assert h.book() == ([(100, 3)], [(110, 2)])
    assert h.resting() == {"b1": (3, 30_000, 0), "s1": (2, 200, 0)}
    assert h.balances() == {
        "alice": {"XYZ": (70_000, 30_000)},
        "sam": {"ABC": (300, 200)},
    }


def test_ioc_partial_fill_expires_the_remainder_and_unlocks_it() -> None:
    h = Harness()
    h.deposit("sam", base=200)
    h.deposit("bob", quote=60_000)
    h.place("s1", "sam", SELL, 100, 2)
    # IOC buy 5 @ 101 locks 101 * 5 * 100 = 50500. It fills 2 @ 100:
    #   quote 2 * 100 * 100 = 20000; price improvement (101 - 100) * 100 * 2 = 200 unlocked;
    #   maker (seller) fee ceil(20000 * 10 / 10000) = 20 XYZ; taker (buyer) fee
    #   ceil(200 * 20 / 10000) = ceil(0.4) = 1 ABC.
    # The 3 lots left expire and unlock 50500 - 20000 - 200 = 30300 = 101 * 3 * 100.
    assert h.place("b1", "bob", BUY, 101, 5, tif=IOC) == [
        accepted("b1", "bob", BUY, 101, 5, 50_500, tif=IOC),
        trade(1, 100, 2, 20_000, ("s1", "sam"), ("b1", "bob"), BUY, 20, 1, 200),
        filled("s1", "sam", SELL, 2, 0),
        expired("b1", "bob", BUY, REASON_TIME_IN_FORCE, 2, 30_300),
    ]
    assert h.book() == ([], [])
    assert h.resting() == {}
    assert h.balances() == {
        FEE_ACCOUNT: {"ABC": (1, 0), "XYZ": (20, 0)},
        "bob": {"ABC": (199, 0), "XYZ": (40_000, 0)},  # 60000 - 20000
        "sam": {"XYZ": (19_980, 0)},  # 20000 - 20
    }


def test_ioc_that_does_not_cross_expires_whole() -> None:
    h = Harness()
    h.deposit("sam", base=100)
    h.deposit("bob", quote=10_000)
    h.place("s1", "sam", SELL, 101, 1)
    assert h.place("b1", "bob", BUY, 100, 1, tif=IOC) == [
        accepted("b1", "bob", BUY, 100, 1, 10_000, tif=IOC),
        expired("b1", "bob", BUY, REASON_TIME_IN_FORCE, 0, 10_000),
    ]
    assert h.book() == ([], [(101, 1)])
    assert h.balances() == {"bob": {"XYZ": (10_000, 0)}, "sam": {"ABC": (0, 100)}}


def fok_book() -> Harness:
    """asks: s1 2 @ 100, s2 2 @ 101 (sam); bob has 40000 XYZ."""
    h = Harness()
    h.deposit("sam", base=400)
    h.deposit("bob", quote=40_000)
    h.place("s1", "sam", SELL, 100, 2)
    h.place("s2", "sam", SELL, 101, 2)
    return h


def test_fok_fills_completely() -> None:
    h = fok_book()
    # FOK buy 3 @ 101 locks 30300; 2 @ 100 and 1 @ 101 are there.
    #   trade 1: 2 @ 100, quote 20000, unlocked (101-100)*100*2 = 200, fees 20 XYZ / 1 ABC
    #   trade 2: 1 @ 101, quote 10100, unlocked 0, fees ceil(10.1) = 11 XYZ / ceil(0.2) = 1 ABC
    #   taker unlocks 30300 - 20200 - 10100 = 0
    assert h.place("b1", "bob", BUY, 101, 3, tif=FOK) == [
        accepted("b1", "bob", BUY, 101, 3, 30_300, tif=FOK),
        trade(1, 100, 2, 20_000, ("s1", "sam"), ("b1", "bob"), BUY, 20, 1, 200),
        filled("s1", "sam", SELL, 2, 0),
        trade(2, 101, 1, 10_100, ("s2", "sam"), ("b1", "bob"), BUY, 11, 1, 0),
        filled("b1", "bob", BUY, 3, 0),
    ]
    assert h.book() == ([], [(101, 1)])
    assert h.resting() == {"s2": (1, 100, 1)}
    assert h.balances() == {
        FEE_ACCOUNT: {"ABC": (2, 0), "XYZ": (31, 0)},
        "bob": {"ABC": (298, 0), "XYZ": (9_900, 0)},  # 40000 - 20000 - 10100
        "sam": {"ABC": (0, 100), "XYZ": (30_069, 0)},  # 20000 - 20 + 10100 - 11
    }


def test_fok_unfillable_is_rejected_with_no_state_change() -> None:
    h = fok_book()
    before = h.state()
    # only 2 lots are at or below 100: FOK buy 3 @ 100 is refused; its 30000 lock comes back
    assert h.place("b1", "bob", BUY, 100, 3, tif=FOK) == [
        rejected("b1", "bob", BUY, ResultCode.FOK_UNFILLABLE, 30_000)
    ]
    assert h.state() == before
    assert h.balances() == {"bob": {"XYZ": (40_000, 0)}, "sam": {"ABC": (0, 400)}}
    # a FOK sell into an empty bid side
    h.deposit("sam", base=100)
    assert h.place("s3", "sam", SELL, 1, 1, tif=FOK) == [
        rejected("s3", "sam", SELL, ResultCode.FOK_UNFILLABLE, 100)
    ]
    assert h.book() == ([], [(100, 2), (101, 2)])


def test_fok_honors_the_self_trade_mode() -> None:
    # asks at 100: s0 (sam), a1 (alice), s1 (sam), one lot each
    def book() -> Harness:
        h = Harness()
        h.deposit("sam", base=200)
        h.deposit("alice", base=100, quote=20_000)
        h.place("s0", "sam", SELL, 100, 1)
        h.place("a1", "alice", SELL, 100, 1)
        h.place("s1", "sam", SELL, 100, 1)
        return h

    # EXPIRE_TAKER would stop at a1 after one lot: 1 < 2, refused
    h = book()
    assert h.place("b1", "alice", BUY, 100, 2, tif=FOK, stp=STP_EXPIRE_TAKER) == [
        rejected("b1", "alice", BUY, ResultCode.FOK_UNFILLABLE, 20_000)
    ]
    # EXPIRE_MAKER skips a1 (and expires it): s0 and s1 fill it
    h = book()
    assert h.place("b1", "alice", BUY, 100, 2, tif=FOK, stp=STP_EXPIRE_MAKER) == [
        accepted("b1", "alice", BUY, 100, 2, 20_000, tif=FOK, stp=STP_EXPIRE_MAKER),
        trade(1, 100, 1, 10_000, ("s0", "sam"), ("b1", "alice"), BUY, 10, 1),
        filled("s0", "sam", SELL, 1, 0),
        expired("a1", "alice", SELL, REASON_SELF_TRADE, 0, 100),
        trade(2, 100, 1, 10_000, ("s1", "sam"), ("b1", "alice"), BUY, 10, 1),
        filled("s1", "sam", SELL, 1, 0),
        filled("b1", "alice", BUY, 2, 0),
    ]


def test_post_only_rests() -> None:
    h = Harness()
    h.deposit("sam", base=200)
    h.deposit("bob", quote=10_000)
    h.place("s1", "sam", SELL, 101, 2)
    assert h.place("b1", "bob", BUY, 100, 1, tif=POST_ONLY) == [
        accepted("b1", "bob", BUY, 100, 1, 10_000, tif=POST_ONLY)
    ]
    assert h.book() == ([(100, 1)], [(101, 2)])
    assert h.resting()["b1"] == (1, 10_000, 0)


def test_post_only_that_would_cross_is_rejected() -> None:
    h = Harness()
    h.deposit("sam", base=300)
    h.deposit("bob", quote=30_000)
    h.place("s1", "sam", SELL, 101, 2)
    h.place("b1", "bob", BUY, 100, 1)
    before = h.state()
    # a buy at the best ask would trade
    assert h.place("b2", "bob", BUY, 101, 1, tif=POST_ONLY) == [
        rejected("b2", "bob", BUY, ResultCode.POST_ONLY_WOULD_CROSS, 10_100)
    ]
    # a sell at the best bid would trade
    assert h.place("s2", "sam", SELL, 100, 1, tif=POST_ONLY) == [
        rejected("s2", "sam", SELL, ResultCode.POST_ONLY_WOULD_CROSS, 100)
    ]
    assert h.state() == before
    assert h.book() == ([(100, 1)], [(101, 2)])


def test_market_sell_by_qty_across_levels() -> None:
    h = Harness()
    h.deposit("alice", quote=20_000)
    h.deposit("carol", quote=19_800)
    h.deposit("sam", base=300)
    h.place("b1", "alice", BUY, 100, 2)  # locks 20000
    h.place("b2", "carol", BUY, 99, 2)  # locks 19800
    # market sell 3 locks 300 ABC; a market GTC is IOC.
    #   2 @ 100: quote 20000, taker (seller) fee ceil(20000 * 20 / 10000) = 40 XYZ,
    #            maker (buyer) fee ceil(200 * 10 / 10000) = ceil(0.2) = 1 ABC
    #   1 @ 99:  quote 9900, taker fee ceil(19.8) = 20 XYZ, maker fee 1 ABC
    assert h.place("m1", "sam", SELL, qty=3, type=MARKET) == [
        accepted("m1", "sam", SELL, 0, 3, 300, type=MARKET, tif=IOC),
        trade(1, 100, 2, 20_000, ("b1", "alice"), ("m1", "sam"), SELL, 1, 40),
        filled("b1", "alice", BUY, 2, 0),
        trade(2, 99, 1, 9_900, ("b2", "carol"), ("m1", "sam"), SELL, 1, 20),
        filled("m1", "sam", SELL, 3, 0),
    ]
    assert h.book() == ([(99, 1)], [])
    assert h.resting() == {"b2": (1, 9_900, 1)}
    assert h.balances() == {
        FEE_ACCOUNT: {"ABC": (2, 0), "XYZ": (60, 0)},
        "alice": {"ABC": (199, 0)},
        "carol": {"ABC": (99, 0), "XYZ": (0, 9_900)},
        "sam": {"XYZ": (29_840, 0)},  # 20000 - 40 + 9900 - 20
    }


def test_market_sell_expires_when_the_book_runs_out() -> None:
    h = Harness()
    h.deposit("alice", quote=10_000)
    h.deposit("sam", base=500)
    h.place("b1", "alice", BUY, 100, 1)
    # market sell 5 (locks 500): 1 @ 100 then no bids; 4 lots = 400 ABC come back
    assert h.place("m1", "sam", SELL, qty=5, type=MARKET, tif=IOC) == [
        accepted("m1", "sam", SELL, 0, 5, 500, type=MARKET, tif=IOC),
        trade(1, 100, 1, 10_000, ("b1", "alice"), ("m1", "sam"), SELL, 1, 20),
        filled("b1", "alice", BUY, 1, 0),
        expired("m1", "sam", SELL, REASON_TIME_IN_FORCE, 1, 400),
    ]
    assert h.balances() == {
        FEE_ACCOUNT: {"ABC": (1, 0), "XYZ": (20, 0)},
        "alice": {"ABC": (99, 0)},
        "sam": {"ABC": (400, 0), "XYZ": (9_980, 0)},
    }


def quote_qty_book(*asks: tuple[str, int, int]) -> Harness:
    h = Harness()
    h.deposit("sam", base=1_000)
    h.deposit("bob", quote=25_000)
    for order_id, price, qty in asks:
        h.place(order_id, "sam", SELL, price, qty)
    return h


def test_market_buy_by_quote_qty_ends_filled_when_the_rest_cannot_buy_a_lot() -> None:
    h = quote_qty_book(("s1", 100, 1), ("s2", 102, 5))
    # budget 25000: 1 @ 100 (10000, left 15000), 1 @ 102 (10200, left 4800); 4800 < 10200,
    # the price of one more lot at the best ask: filled, 4800 unlocked.
    #   fees: maker 10 and ceil(10.2) = 11 XYZ; taker ceil(100 * 20 / 10000) = 1 ABC each
    assert h.place("m1", "bob", BUY, type=MARKET, quote_qty=25_000) == [
        accepted("m1", "bob", BUY, 0, 0, 25_000, type=MARKET, tif=IOC, quote_qty=25_000),
        trade(1, 100, 1, 10_000, ("s1", "sam"), ("m1", "bob"), BUY, 10, 1),
        filled("s1", "sam", SELL, 1, 0),
        trade(2, 102, 1, 10_200, ("s2", "sam"), ("m1", "bob"), BUY, 11, 1),
        filled("m1", "bob", BUY, 2, 4_800),
    ]
    assert h.book() == ([], [(102, 4)])
    assert h.balances() == {
        FEE_ACCOUNT: {"ABC": (2, 0), "XYZ": (21, 0)},
        "bob": {"ABC": (198, 0), "XYZ": (4_800, 0)},
        "sam": {"ABC": (400, 400), "XYZ": (20_179, 0)},  # 10000 - 10 + 10200 - 11
    }


def test_market_buy_by_quote_qty_spending_it_all_is_filled() -> None:
    h = quote_qty_book(("s1", 100, 3))
    # budget 20000 buys exactly 2 @ 100: nothing left, filled
    assert h.place("m1", "bob", BUY, type=MARKET, quote_qty=20_000) == [
        accepted("m1", "bob", BUY, 0, 0, 20_000, type=MARKET, tif=IOC, quote_qty=20_000),
        trade(1, 100, 2, 20_000, ("s1", "sam"), ("m1", "bob"), BUY, 20, 1),
        filled("m1", "bob", BUY, 2, 0),
    ]
    assert h.balances()["bob"] == {"ABC": (199, 0), "XYZ": (5_000, 0)}


def test_market_buy_by_quote_qty_expires_when_the_book_runs_out() -> None:
    h = quote_qty_book(("s1", 100, 1))
    # 1 @ 100 costs 10000; then no asks: expired, the unspent 15000 unlocked
    assert h.place("m1", "bob", BUY, type=MARKET, quote_qty=25_000) == [
        accepted("m1", "bob", BUY, 0, 0, 25_000, type=MARKET, tif=IOC, quote_qty=25_000),
        trade(1, 100, 1, 10_000, ("s1", "sam"), ("m1", "bob"), BUY, 10, 1),
        filled("s1", "sam", SELL, 1, 0),
        expired("m1", "bob", BUY, REASON_TIME_IN_FORCE, 1, 15_000),
    ]
    assert h.balances() == {
        FEE_ACCOUNT: {"ABC": (1, 0), "XYZ": (10, 0)},
        "bob": {"ABC": (99, 0), "XYZ": (15_000, 0)},
        "sam": {"ABC": (900, 0), "XYZ": (9_990, 0)},
    }


def test_market_buy_by_quote_qty_that_buys_nothing_expires() -> None:
    h = quote_qty_book(("s1", 300, 1))
    h.end_batch()
    # one lot at the best ask costs 30000 > 25000: nothing bought, expired, all unlocked
    assert h.place("m1", "bob", BUY, type=MARKET, quote_qty=25_000) == [
        accepted("m1", "bob", BUY, 0, 0, 25_000, type=MARKET, tif=IOC, quote_qty=25_000),
        expired("m1", "bob", BUY, REASON_TIME_IN_FORCE, 0, 25_000),
    ]
    assert h.balances()["bob"] == {"XYZ": (25_000, 0)}
    assert h.end_batch() == []  # nothing touched: no depth event


def test_market_buy_by_qty_locks_the_cost_from_the_asks() -> None:
    h = quote_qty_book(("s1", 100, 1), ("s2", 102, 5))
    h.deposit("bob", quote=25_000)  # 50000 in all
    # buying 3 from the asks as they stand costs 1 * 100 * 100 + 2 * 102 * 100 = 30400
    assert cost_to_buy(EASY, 3, h.engine.asks.totals()) == 30_400
    #   1 @ 100: 10000, fees 10 XYZ / 1 ABC; 2 @ 102: 20400, fees ceil(20.4) = 21 XYZ /
    #   ceil(0.4) = 1 ABC; nothing left to unlock
    assert h.place("m1", "bob", BUY, qty=3, type=MARKET) == [
        accepted("m1", "bob", BUY, 0, 3, 30_400, type=MARKET, tif=IOC),
        trade(1, 100, 1, 10_000, ("s1", "sam"), ("m1", "bob"), BUY, 10, 1),
        filled("s1", "sam", SELL, 1, 0),
        trade(2, 102, 2, 20_400, ("s2", "sam"), ("m1", "bob"), BUY, 21, 1),
        filled("m1", "bob", BUY, 3, 0),
    ]
    assert h.resting() == {"s2": (3, 300, 2)}
    assert h.balances() == {
        FEE_ACCOUNT: {"ABC": (2, 0), "XYZ": (31, 0)},
        "bob": {"ABC": (298, 0), "XYZ": (19_600, 0)},
        "sam": {"ABC": (400, 300), "XYZ": (30_369, 0)},
    }


def test_market_buy_by_qty_beyond_the_book_locks_only_what_is_there() -> None:
    h = quote_qty_book(("s1", 100, 1))
    # 3 wanted, 1 there: locks 10000, buys 1, expires with nothing to unlock
    assert h.place("m1", "bob", BUY, qty=3, type=MARKET) == [
        accepted("m1", "bob", BUY, 0, 3, 10_000, type=MARKET, tif=IOC),
        trade(1, 100, 1, 10_000, ("s1", "sam"), ("m1", "bob"), BUY, 10, 1),
        filled("s1", "sam", SELL, 1, 0),
        expired("m1", "bob", BUY, REASON_TIME_IN_FORCE, 1, 0),
    ]
    # into an empty book it locks 0 and expires at once
    assert h.place("m2", "bob", BUY, qty=1, type=MARKET) == [
        accepted("m2", "bob", BUY, 0, 1, 0, type=MARKET, tif=IOC),
        expired("m2", "bob", BUY, REASON_TIME_IN_FORCE, 0, 0),
    ]
    assert h.balances()["bob"] == {"ABC": (99, 0), "XYZ": (15_000, 0)}


def test_market_fok_by_qty() -> None:
    h = quote_qty_book(("s1", 100, 1), ("s2", 102, 1))
    h.deposit("bob", quote=25_000)
    before = h.state()
    # 3 wanted, 2 there: refused, the 20200 it locked comes back
    assert h.place("m1", "bob", BUY, qty=3, type=MARKET, tif=FOK) == [
        rejected("m1", "bob", BUY, ResultCode.FOK_UNFILLABLE, 20_200)
    ]
    assert h.state() == before
    assert h.place("m2", "bob", BUY, qty=2, type=MARKET, tif=FOK) == [
        accepted("m2", "bob", BUY, 0, 2, 20_200, type=MARKET, tif=FOK),
        trade(1, 100, 1, 10_000, ("s1", "sam"), ("m2", "bob"), BUY, 10, 1),
        filled("s1", "sam", SELL, 1, 0),
        trade(2, 102, 1, 10_200, ("s2", "sam"), ("m2", "bob"), BUY, 11, 1),
        filled("s2", "sam", SELL, 1, 0),
        filled("m2", "bob", BUY, 2, 0),
    ]


# ---- self-trade prevention ------------------------------------------------------------------


def test_stp_none_trades_with_oneself_and_pays_fees() -> None:
    h = Harness()
    h.deposit("alice", base=100, quote=10_000)
    h.place("a1", "alice", SELL, 100, 1)
    # alice buys her own lot: quote 10000, maker fee 10 XYZ, taker fee ceil(0.2) = 1 ABC
    assert h.place("b1", "alice", BUY, 100, 1, stp=STP_NONE) == [
        accepted("b1", "alice", BUY, 100, 1, 10_000, stp=STP_NONE),
        trade(1, 100, 1, 10_000, ("a1", "alice"), ("b1", "alice"), BUY, 10, 1),
        filled("a1", "alice", SELL, 1, 0),
        filled("b1", "alice", BUY, 1, 0),
    ]
    assert h.balances() == {
        FEE_ACCOUNT: {"ABC": (1, 0), "XYZ": (10, 0)},
        "alice": {"ABC": (99, 0), "XYZ": (9_990, 0)},
    }


def test_stp_expire_maker_expires_own_maker_and_goes_on() -> None:
    h = Harness()
    h.deposit("alice", base=100, quote=20_200)
    h.deposit("sam", base=200)
    h.place("a1", "alice", SELL, 100, 1)  # first at 100
    h.place("s1", "sam", SELL, 100, 1)  # behind it
    h.place("s2", "sam", SELL, 101, 1)
    # buy 2 @ 101 locks 20200. a1 is alice's: expired (100 ABC unlocked); s1 fills at 100
    # (10000, improvement 100 unlocked), s2 at 101 (10100; maker fee ceil(10.1) = 11).
    assert h.place("b1", "alice", BUY, 101, 2, stp=STP_EXPIRE_MAKER) == [
        accepted("b1", "alice", BUY, 101, 2, 20_200),
        expired("a1", "alice", SELL, REASON_SELF_TRADE, 0, 100),
        trade(1, 100, 1, 10_000, ("s1", "sam"), ("b1", "alice"), BUY, 10, 1, 100),
        filled("s1", "sam", SELL, 1, 0),
        trade(2, 101, 1, 10_100, ("s2", "sam"), ("b1", "alice"), BUY, 11, 1),
        filled("s2", "sam", SELL, 1, 0),
        filled("b1", "alice", BUY, 2, 0),
    ]
    assert h.book() == ([], [])
    assert h.balances() == {
        FEE_ACCOUNT: {"ABC": (2, 0), "XYZ": (21, 0)},
        "alice": {"ABC": (298, 0), "XYZ": (100, 0)},
        "sam": {"XYZ": (20_079, 0)},
    }


def test_stp_default_is_expire_maker_and_works_for_sells() -> None:
    h = Harness()
    h.deposit("alice", base=200, quote=10_000)
    h.deposit("bob", quote=9_900)
    h.place("a1", "alice", BUY, 100, 1)
    h.place("b1", "bob", BUY, 99, 1)
    # JSON without "stp": EXPIRE_MAKER. alice's bid at 100 expires (10000 unlocked); the sell
    # fills bob's bid at 99: quote 9900, taker fee ceil(19.8) = 20 XYZ, maker fee 1 ABC.
    raw = {"op": "place", "id": "s1", "user": "alice", "side": "sell", "price": "99", "qty": "2"}
    assert h.submit(raw) == [
        accepted("s1", "alice", SELL, 99, 2, 200),
        expired("a1", "alice", BUY, REASON_SELF_TRADE, 0, 10_000),
        trade(1, 99, 1, 9_900, ("b1", "bob"), ("s1", "alice"), SELL, 1, 20),
        filled("b1", "bob", BUY, 1, 0),
    ]
    # the second lot rests at 99
    assert h.book() == ([], [(99, 1)])
    assert h.balances() == {
        FEE_ACCOUNT: {"ABC": (1, 0), "XYZ": (20, 0)},
        "alice": {"ABC": (0, 100), "XYZ": (19_880, 0)},
        "bob": {"ABC": (99, 0)},
    }


def stp_book() -> Harness:
    """asks: s0 1 @ 99 (sam); a1 1 @ 100 (alice), then s1 1 @ 100 (sam)."""
    h = Harness()
    h.deposit("sam", base=200)
    h.deposit("alice", base=100, quote=30_000)
    h.place("s0", "sam", SELL, 99, 1)
    h.place("a1", "alice", SELL, 100, 1)
    h.place("s1", "sam", SELL, 100, 1)
    return h


def test_stp_expire_taker_expires_the_taker_and_keeps_the_maker() -> None:
    h = stp_book()
    # buy 3 @ 100 (GTC) locks 30000. 1 @ 99: 9900, improvement 100, maker fee ceil(9.9) = 10.
    # Then a1 (alice's own) is next: the taker expires (self_trade, although GTC) and
    # unlocks 30000 - 9900 - 100 = 20000; a1 and s1 behind it stay.
    assert h.place("b1", "alice", BUY, 100, 3, stp=STP_EXPIRE_TAKER) == [
        accepted("b1", "alice", BUY, 100, 3, 30_000, stp=STP_EXPIRE_TAKER),
        trade(1, 99, 1, 9_900, ("s0", "sam"), ("b1", "alice"), BUY, 10, 1, 100),
        filled("s0", "sam", SELL, 1, 0),
        expired("b1", "alice", BUY, REASON_SELF_TRADE, 1, 20_000),
    ]
    assert h.book() == ([], [(100, 2)])
    assert list(h.resting()) == ["a1", "s1"]
    assert h.balances() == {
        FEE_ACCOUNT: {"ABC": (1, 0), "XYZ": (10, 0)},
        "alice": {"ABC": (99, 100), "XYZ": (20_100, 0)},
        "sam": {"ABC": (0, 100), "XYZ": (9_890, 0)},
    }


def test_stp_expire_both() -> None:
    h = stp_book()
    # as EXPIRE_TAKER, and a1 expires too (100 ABC unlocked); s1 stays
    assert h.place("b1", "alice", BUY, 100, 3, stp=STP_EXPIRE_BOTH) == [
        accepted("b1", "alice", BUY, 100, 3, 30_000, stp=STP_EXPIRE_BOTH),
        trade(1, 99, 1, 9_900, ("s0", "sam"), ("b1", "alice"), BUY, 10, 1, 100),
        filled("s0", "sam", SELL, 1, 0),
        expired("a1", "alice", SELL, REASON_SELF_TRADE, 0, 100),
        expired("b1", "alice", BUY, REASON_SELF_TRADE, 1, 20_000),
    ]
    assert h.book() == ([], [(100, 1)])
    assert list(h.resting()) == ["s1"]
    assert h.balances() == {
        FEE_ACCOUNT: {"ABC": (1, 0), "XYZ": (10, 0)},
        "alice": {"ABC": (199, 0), "XYZ": (20_100, 0)},
        "sam": {"ABC": (0, 100), "XYZ": (9_890, 0)},
    }


def test_stp_expire_taker_on_first_maker_trades_nothing() -> None:
    h = Harness()
    h.deposit("alice", base=100, quote=10_000)
    h.place("a1", "alice", SELL, 100, 1)
    assert h.place("b1", "alice", BUY, 100, 1, tif=IOC, stp=STP_EXPIRE_TAKER) == [
        accepted("b1", "alice", BUY, 100, 1, 10_000, tif=IOC, stp=STP_EXPIRE_TAKER),
        expired("b1", "alice", BUY, REASON_SELF_TRADE, 0, 10_000),
    ]
    assert h.resting() == {"a1": (1, 100, 0)}


# ---- fees -----------------------------------------------------------------------------------


def test_fees_round_up_and_maker_taker_bps_differ() -> None:
    h = Harness()
    h.deposit("sam", base=1_200)
    h.deposit("bob", quote=121_200)
    # 6 lots @ 101: quote 6 * 101 * 100 = 60600, base 600
    h.place("s1", "sam", SELL, 101, 6)
    # taker buys: taker (buyer) fee ceil(600 * 20 / 10000) = ceil(1.2) = 2 ABC;
    #             maker (seller) fee ceil(60600 * 10 / 10000) = ceil(60.6) = 61 XYZ
    assert h.place("b1", "bob", BUY, 101, 6) == [
        accepted("b1", "bob", BUY, 101, 6, 60_600),
        trade(1, 101, 6, 60_600, ("s1", "sam"), ("b1", "bob"), BUY, 61, 2),
        filled("s1", "sam", SELL, 6, 0),
        filled("b1", "bob", BUY, 6, 0),
    ]
    # roles swapped: maker (buyer) fee ceil(600 * 10 / 10000) = ceil(0.6) = 1 ABC;
    #                taker (seller) fee ceil(60600 * 20 / 10000) = ceil(121.2) = 122 XYZ
    h.place("b2", "bob", BUY, 101, 6)
    assert h.place("s2", "sam", SELL, 101, 6) == [
        accepted("s2", "sam", SELL, 101, 6, 600),
        trade(2, 101, 6, 60_600, ("b2", "bob"), ("s2", "sam"), SELL, 1, 122),
        filled("b2", "bob", BUY, 6, 0),
        filled("s2", "sam", SELL, 6, 0),
    ]
    assert h.balances() == {
        FEE_ACCOUNT: {"ABC": (3, 0), "XYZ": (183, 0)},
        "bob": {"ABC": (1_197, 0)},  # 600 - 2 + 600 - 1
        "sam": {"XYZ": (121_017, 0)},  # 60600 - 61 + 60600 - 122
    }


def test_zero_fee_market_charges_nothing() -> None:
    h = Harness(make_rules(fees={"makerBps": 0, "takerBps": 0}))
    h.deposit("sam", base=100)
    h.deposit("bob", quote=10_000)
    h.place("s1", "sam", SELL, 100, 1)
    assert h.place("b1", "bob", BUY, 100, 1)[1] == trade(
        1, 100, 1, 10_000, ("s1", "sam"), ("b1", "bob"), BUY, 0, 0
    )
    assert h.balances() == {"bob": {"ABC": (100, 0)}, "sam": {"XYZ": (10_000, 0)}}


def test_btc_usd_fee_rounding_from_json() -> None:
    # BTC scale 8, USD scale 6, tick 0.01, lot 0.0001: 1 lot = 10000 sat, tick x lot = 1 micro-USD
    h = Harness(BTC_USD)
    deposits = [
        {"op": "deposit", "user": "sam", "asset": "BTC", "amount": "0.001"},
        {"op": "deposit", "user": "bob", "asset": "USD", "amount": "100"},
    ]
    assert [event for raw in deposits for event in h.submit(raw)] == [
        Funds("btc-usd", 0, "", 0, "sam", "BTC", 100_000),
        Funds("btc-usd", 0, "", 0, "bob", "USD", 100_000_000),
    ]
    sell = {"op": "place", "id": "s1", "user": "sam", "side": "sell"}
    assert h.submit(sell | {"price": "30000.01", "qty": "0.0001"}) == [
        accepted("s1", "sam", SELL, 3_000_001, 1, 10_000, market="btc-usd")
    ]
    # 1 lot @ 3000001 ticks: quote 3000001 micro-USD (3.000001 USD)
    #   maker (seller) fee ceil(3000001 * 10 / 10000) = ceil(3000.001) = 3001 micro-USD
    #   taker (buyer) fee ceil(10000 * 20 / 10000) = 20 sat
    buy = {"op": "place", "id": "b1", "user": "bob", "side": "buy", "tif": "IOC"}
    events = h.raw(buy | {"price": "30000.01", "qty": "0.0001"})
    assert [norm(event) for event in events] == [
        accepted("b1", "bob", BUY, 3_000_001, 1, 3_000_001, tif=IOC, market="btc-usd"),
        trade(
            1,
            3_000_001,
            1,
            3_000_001,
            ("s1", "sam"),
            ("b1", "bob"),
            BUY,
            3001,
            20,
            0,
            market="btc-usd",
        ),
        filled("s1", "sam", SELL, 1, 0, market="btc-usd"),
        filled("b1", "bob", BUY, 1, 0, market="btc-usd"),
    ]
    # at the edge, each fee in the scale of the asset it is paid in
    trade_json = event_json(BTC_USD, events[1])
    assert (trade_json["price"], trade_json["qty"], trade_json["quote_qty"]) == (
        "30000.01",
        "0.0001",
        "3.000001",
    )
    assert (trade_json["maker_fee"], trade_json["taker_fee"]) == ("0.003001", "0.00000020")
    # bob's bid of 3 lots, hit by sam's market sell: quote 9000003 micro-USD
    #   taker (seller) fee ceil(9000003 * 20 / 10000) = ceil(18000.006) = 18001 micro-USD
    #   maker (buyer) fee ceil(30000 * 10 / 10000) = 30 sat
    h.submit(buy | {"id": "b2", "tif": "GTC", "price": "30000.01", "qty": "0.0003"})
    assert h.submit(sell | {"id": "m1", "type": "market", "qty": "0.0003"}) == [
        accepted("m1", "sam", SELL, 0, 3, 30_000, type=MARKET, tif=IOC, market="btc-usd"),
        trade(
            2,
            3_000_001,
            3,
            9_000_003,
            ("b2", "bob"),
            ("m1", "sam"),
            SELL,
            30,
            18_001,
            market="btc-usd",
        ),
        filled("b2", "bob", BUY, 3, 0, market="btc-usd"),
        filled("m1", "sam", SELL, 3, 0, market="btc-usd"),
    ]
    assert h.balances() == {
        FEE_ACCOUNT: {"BTC": (50, 0), "USD": (21_002, 0)},
        "bob": {"BTC": (39_950, 0), "USD": (87_999_996, 0)},  # 100e6 - 3000001 - 9000003
        "sam": {"BTC": (60_000, 0), "USD": (11_979_002, 0)},  # 3000001-3001 + 9000003-18001
    }


# ---- price improvement ----------------------------------------------------------------------


def test_price_improvement_unlocks_the_difference_in_the_trade() -> None:
    h = Harness()
    h.deposit("sam", base=200)
    h.deposit("bob", quote=21_000)
    h.place("s1", "sam", SELL, 100, 2)
    # buy 2 @ 105 locks 21000; fills 2 @ 100 = 20000, unlocking (105 - 100) * 100 * 2 = 1000
    assert h.place("b1", "bob", BUY, 105, 2) == [
        accepted("b1", "bob", BUY, 105, 2, 21_000),
        trade(1, 100, 2, 20_000, ("s1", "sam"), ("b1", "bob"), BUY, 20, 1, 1_000),
        filled("s1", "sam", SELL, 2, 0),
        filled("b1", "bob", BUY, 2, 0),
    ]
    assert h.balances()["bob"] == {"ABC": (199, 0), "XYZ": (1_000, 0)}  # nothing locked


def test_partially_filled_buy_rests_holding_price_times_remaining() -> None:
    h = Harness()
    h.deposit("sam", base=200)
    h.deposit("bob", quote=52_500)
    h.place("s1", "sam", SELL, 100, 2)
    # buy 5 @ 105 locks 52500; 2 @ 100 cost 20000 and unlock 1000; 3 rest holding
    # 52500 - 21000 = 31500 = 105 * 3 * 100
    assert h.place("b1", "bob", BUY, 105, 5) == [
        accepted("b1", "bob", BUY, 105, 5, 52_500),
        trade(1, 100, 2, 20_000, ("s1", "sam"), ("b1", "bob"), BUY, 20, 1, 1_000),
        filled("s1", "sam", SELL, 2, 0),
    ]
    assert h.resting() == {"b1": (3, 31_500, 2)}
    assert h.book() == ([(105, 3)], [])
    assert h.balances()["bob"] == {"ABC": (199, 0), "XYZ": (1_000, 31_500)}


# ---- cancel ---------------------------------------------------------------------------------


def test_cancel_of_a_buy_unlocks_quote() -> None:
    h = Harness()
    h.deposit("bob", base=500, quote=50_000)
    h.place("b1", "bob", BUY, 100, 3)
    assert h.balances() == {"bob": {"ABC": (500, 0), "XYZ": (20_000, 30_000)}}
    assert h.cancel("b1", "bob") == [canceled("b1", "bob", BUY, 0, 30_000)]
    assert h.balances() == {"bob": {"ABC": (500, 0), "XYZ": (50_000, 0)}}
    assert h.book() == ([], [])
    assert h.resting() == {}


def test_cancel_of_a_sell_unlocks_base() -> None:
    h = Harness()
    h.deposit("sam", base=500, quote=50_000)
    h.place("s1", "sam", SELL, 100, 3)
    assert h.balances() == {"sam": {"ABC": (200, 300), "XYZ": (50_000, 0)}}
    assert h.cancel("s1", "sam") == [canceled("s1", "sam", SELL, 0, 300)]
    assert h.balances() == {"sam": {"ABC": (500, 0), "XYZ": (50_000, 0)}}
    assert h.book() == ([], [])


def test_cancel_of_a_partially_filled_order_unlocks_the_remainder() -> None:
    h = Harness()
    h.deposit("sam", base=300)
    h.deposit("bob", quote=10_000)
    h.place("s1", "sam", SELL, 100, 3)
    h.place("b1", "bob", BUY, 100, 1, tif=IOC)
    assert h.resting() == {"s1": (2, 200, 1)}
    assert h.cancel("s1", "sam") == [canceled("s1", "sam", SELL, 1, 200)]
    assert h.balances()["sam"] == {"ABC": (200, 0), "XYZ": (9_990, 0)}


def test_cancel_refusals() -> None:
    h = Harness()
    h.deposit("sam", base=100)
    h.place("s1", "sam", SELL, 100, 1)
    before = h.state()
    assert h.cancel("s1", "bob") == [rejected("s1", "bob", "", ResultCode.NOT_OWNER, op="cancel")]
    assert h.cancel("nope", "sam") == [
        rejected("nope", "sam", "", ResultCode.UNKNOWN_ORDER, op="cancel")
    ]
    assert h.state() == before
    assert h.cancel("s1", "sam") == [canceled("s1", "sam", SELL, 0, 100)]
    assert h.cancel("s1", "sam") == [
        rejected("s1", "sam", "", ResultCode.UNKNOWN_ORDER, op="cancel")
    ]
    assert h.balances() == {"sam": {"ABC": (100, 0)}}


def test_cancel_of_a_filled_order_is_unknown() -> None:
    h = Harness()
    h.deposit("sam", base=100)
    h.deposit("bob", quote=10_000)
    h.place("s1", "sam", SELL, 100, 1)
    h.place("b1", "bob", BUY, 100, 1)
    assert h.cancel("s1", "sam") == [
        rejected("s1", "sam", "", ResultCode.UNKNOWN_ORDER, op="cancel")
    ]


def test_cancel_all_cancels_oldest_first_and_only_that_users_orders() -> None:
    h = Harness()
    h.deposit("alice", base=100, quote=18_500)
    h.deposit("bob", quote=9_100)
    h.place("b1", "alice", BUY, 90, 1)  # 9000
    h.place("x1", "bob", BUY, 91, 1)
    h.place("s1", "alice", SELL, 110, 1)  # 100 ABC
    h.place("b3", "alice", BUY, 95, 1)  # 9500: a better price, placed later
    # oldest first: placement order, not price or side or id
    assert h.cancel_all("alice") == [
        canceled("b1", "alice", BUY, 0, 9_000),
        canceled("s1", "alice", SELL, 0, 100),
        canceled("b3", "alice", BUY, 0, 9_500),
    ]
    assert h.resting() == {"x1": (1, 9_100, 0)}
    assert h.book() == ([(91, 1)], [])
    assert h.balances() == {
        "alice": {"ABC": (100, 0), "XYZ": (18_500, 0)},
        "bob": {"XYZ": (0, 9_100)},
    }
    assert h.cancel_all("alice") == []  # nothing left: no event
    assert h.submit({"op": "cancel_all", "user": "bob"}) == [canceled("x1", "bob", BUY, 0, 9_100)]


# ---- priority -------------------------------------------------------------------------------


def test_partial_fills_across_levels_best_price_then_time() -> None:
    h = Harness()
    h.deposit("sam", base=300)
    h.deposit("sue", base=200)
    h.deposit("bob", quote=40_800)
    # arrival order is not price order
    h.place("s1", "sam", SELL, 103, 1)
    h.place("s2", "sam", SELL, 101, 1)
    h.place("s3", "sue", SELL, 102, 1)
    h.place("s4", "sue", SELL, 101, 1)
    h.place("s5", "sam", SELL, 100, 1)
    assert h.book() == ([], [(100, 1), (101, 2), (102, 1), (103, 1)])
    # buy 4 @ 102 locks 40800: s5 @ 100, s2 @ 101 (older), s4 @ 101, s3 @ 102; s1 untouched.
    # improvements: 200, 100, 100, 0; maker fees 10, ceil(10.1) = 11, 11, ceil(10.2) = 11
    assert h.place("b1", "bob", BUY, 102, 4) == [
        accepted("b1", "bob", BUY, 102, 4, 40_800),
        trade(1, 100, 1, 10_000, ("s5", "sam"), ("b1", "bob"), BUY, 10, 1, 200),
        filled("s5", "sam", SELL, 1, 0),
        trade(2, 101, 1, 10_100, ("s2", "sam"), ("b1", "bob"), BUY, 11, 1, 100),
        filled("s2", "sam", SELL, 1, 0),
        trade(3, 101, 1, 10_100, ("s4", "sue"), ("b1", "bob"), BUY, 11, 1, 100),
        filled("s4", "sue", SELL, 1, 0),
        trade(4, 102, 1, 10_200, ("s3", "sue"), ("b1", "bob"), BUY, 11, 1),
        filled("s3", "sue", SELL, 1, 0),
        filled("b1", "bob", BUY, 4, 0),
    ]
    assert h.book() == ([], [(103, 1)])
    assert h.balances() == {
        FEE_ACCOUNT: {"ABC": (4, 0), "XYZ": (43, 0)},
        "bob": {"ABC": (396, 0), "XYZ": (400, 0)},  # 40800 - 40400 of trades
        "sam": {"ABC": (0, 100), "XYZ": (20_079, 0)},  # 10000 - 10 + 10100 - 11
        "sue": {"XYZ": (20_278, 0)},  # 10100 - 11 + 10200 - 11
    }


def test_partially_filled_maker_keeps_its_place_in_the_queue() -> None:
    h = Harness()
    h.deposit("sam", base=300)
    h.deposit("sue", base=100)
    h.deposit("bob", quote=40_000)
    h.place("s1", "sam", SELL, 100, 3)
    h.place("s2", "sue", SELL, 100, 1)
    h.place("b1", "bob", BUY, 100, 1, tif=IOC)  # s1 keeps 2, still first
    assert h.place("b2", "bob", BUY, 100, 3, tif=IOC) == [
        accepted("b2", "bob", BUY, 100, 3, 30_000, tif=IOC),
        trade(2, 100, 2, 20_000, ("s1", "sam"), ("b2", "bob"), BUY, 20, 1),
        filled("s1", "sam", SELL, 3, 0),
        trade(3, 100, 1, 10_000, ("s2", "sue"), ("b2", "bob"), BUY, 10, 1),
        filled("s2", "sue", SELL, 1, 0),
        filled("b2", "bob", BUY, 3, 0),
    ]


def test_canceled_order_keeps_no_place_in_the_queue() -> None:
    h = Harness()
    h.deposit("sam", base=200)
    h.deposit("sue", base=100)
    h.deposit("bob", quote=10_000)
    h.place("s1", "sam", SELL, 100, 1)
    h.place("s2", "sue", SELL, 100, 1)
    h.cancel("s1", "sam")
    h.place("s1", "sam", SELL, 100, 1)  # the same id again, now behind s2
    assert h.place("b1", "bob", BUY, 100, 1)[1:] == [
        trade(1, 100, 1, 10_000, ("s2", "sue"), ("b1", "bob"), BUY, 10, 1),
        filled("s2", "sue", SELL, 1, 0),
        filled("b1", "bob", BUY, 1, 0),
    ]
    assert h.resting() == {"s1": (1, 100, 0)}


# ---- regressions: the peer bugs from the issue ----------------------------------------------


def test_regression_maker_never_fills_past_its_size_and_leaves_the_book() -> None:
    h = Harness()
    h.deposit("sam", base=200)
    h.deposit("carol", base=300)
    h.deposit("bob", quote=50_000)
    h.place("s1", "sam", SELL, 100, 2)
    # bob wants 5; s1 has 2: the trade is for 2, s1 is done, bob rests 3
    assert h.place("b1", "bob", BUY, 100, 5) == [
        accepted("b1", "bob", BUY, 100, 5, 50_000),
        trade(1, 100, 2, 20_000, ("s1", "sam"), ("b1", "bob"), BUY, 20, 1),
        filled("s1", "sam", SELL, 2, 0),
    ]
    assert "s1" not in h.engine.orders
    assert "s1" not in h.engine.by_user.get("sam", {})
    assert h.engine.asks.levels == {}
    assert h.book() == ([(100, 3)], [])
    # the next seller meets bob's bid, not the filled s1
    # maker (buyer) fee ceil(100 * 10 / 10000) = 1 ABC, taker (seller) ceil(10000*20/10000) = 20
    assert h.place("c1", "carol", SELL, 100, 1) == [
        accepted("c1", "carol", SELL, 100, 1, 100),
        trade(2, 100, 1, 10_000, ("b1", "bob"), ("c1", "carol"), SELL, 1, 20),
        filled("c1", "carol", SELL, 1, 0),
    ]
    assert h.resting() == {"b1": (2, 20_000, 3)}
    h.place("c2", "carol", SELL, 100, 2)
    assert h.resting() == {}
    assert h.book() == ([], [])
    assert h.balances()["bob"] == {"ABC": (497, 0)}  # 500 - 1 - 1 - 1


def test_regression_best_price_first_not_arrival_order() -> None:
    h = Harness()
    h.deposit("sam", base=500)
    h.deposit("alice", quote=29_700)
    h.deposit("bob", quote=20_100)
    for order_id, price in (("s1", 102), ("s2", 101), ("s3", 100)):
        h.place(order_id, "sam", SELL, price, 1)
    # market buy 2 locks 10000 + 10100 = 20100 and takes 100 then 101
    assert h.place("m1", "bob", BUY, qty=2, type=MARKET) == [
        accepted("m1", "bob", BUY, 0, 2, 20_100, type=MARKET, tif=IOC),
        trade(1, 100, 1, 10_000, ("s3", "sam"), ("m1", "bob"), BUY, 10, 1),
        filled("s3", "sam", SELL, 1, 0),
        trade(2, 101, 1, 10_100, ("s2", "sam"), ("m1", "bob"), BUY, 11, 1),
        filled("s2", "sam", SELL, 1, 0),
        filled("m1", "bob", BUY, 2, 0),
    ]
    h.cancel("s1", "sam")
    for order_id, price in (("b1", 98), ("b2", 99), ("b3", 100)):
        h.place(order_id, "alice", BUY, price, 1)
    # market sell 2 takes 100 then 99 (taker fees ceil(20) = 20, ceil(19.8) = 20)
    assert h.place("m2", "sam", SELL, qty=2, type=MARKET) == [
        accepted("m2", "sam", SELL, 0, 2, 200, type=MARKET, tif=IOC),
        trade(3, 100, 1, 10_000, ("b3", "alice"), ("m2", "sam"), SELL, 1, 20),
        filled("b3", "alice", BUY, 1, 0),
        trade(4, 99, 1, 9_900, ("b2", "alice"), ("m2", "sam"), SELL, 1, 20),
        filled("b2", "alice", BUY, 1, 0),
        filled("m2", "sam", SELL, 2, 0),
    ]
    assert h.book() == ([(98, 1)], [])


def test_regression_no_dust_orders() -> None:
    h = Harness()
    h.deposit("sam", base=500)
    h.deposit("bob", quote=50_000)
    h.place("s1", "sam", SELL, 100, 5)
    for qty in (1, 2):
        h.place(f"b{qty}", "bob", BUY, 100, qty, tif=IOC)
        order = h.engine.orders["s1"]
        assert order.remaining > 0 and isinstance(order.remaining, int)
        assert h.engine.asks.levels[100].total == order.remaining
    assert h.resting() == {"s1": (2, 200, 3)}
    h.place("b3", "bob", BUY, 100, 2, tif=IOC)
    assert h.resting() == {}
    assert h.engine.asks.levels == {} and h.engine.asks.best is None
    assert "sam" not in h.engine.by_user  # no empty per-user entries pile up
    # a quantity is a whole number of lots: half a lot is refused, as is zero
    raw = {"op": "place", "id": "b4", "user": "bob", "side": "buy", "price": "100", "qty": "0.5"}
    assert h.submit(raw) == [rejected("b4", "bob", BUY, ResultCode.INVALID_QTY)]
    assert h.place("b5", "bob", BUY, 100, 0) == [rejected("b5", "bob", BUY, ResultCode.INVALID_QTY)]
    assert h.balances()["bob"] == {"ABC": (497, 0)}  # 3 x 1 ABC fee; all 50000 XYZ spent


def test_regression_no_funds_left_locked_after_price_improvement() -> None:
    h = Harness()
    h.deposit("sam", base=100)
    h.deposit("sue", base=100)
    h.deposit("bob", quote=21_000)
    h.place("s1", "sam", SELL, 100, 1)
    h.place("s2", "sue", SELL, 103, 1)
    # buy 2 @ 105 locks 21000: 1 @ 100 (10000 + 500 unlocked), 1 @ 103 (10300 + 200 unlocked)
    assert h.place("b1", "bob", BUY, 105, 2) == [
        accepted("b1", "bob", BUY, 105, 2, 21_000),
        trade(1, 100, 1, 10_000, ("s1", "sam"), ("b1", "bob"), BUY, 10, 1, 500),
        filled("s1", "sam", SELL, 1, 0),
        trade(2, 103, 1, 10_300, ("s2", "sue"), ("b1", "bob"), BUY, 11, 1, 200),
        filled("s2", "sue", SELL, 1, 0),
        filled("b1", "bob", BUY, 2, 0),
    ]
    assert h.ledger.locked("bob", "XYZ") == 0
    assert h.balances()["bob"] == {"ABC": (198, 0), "XYZ": (700, 0)}  # 21000 - 20300


def test_regression_cancel_unlocks_the_right_asset() -> None:
    h = Harness()
    h.deposit("sam", base=500, quote=50_000)
    h.place("s1", "sam", SELL, 100, 3)  # locks 300 ABC
    h.place("b1", "sam", BUY, 90, 2)  # locks 18000 XYZ
    assert h.balances() == {"sam": {"ABC": (200, 300), "XYZ": (32_000, 18_000)}}
    assert h.cancel("s1", "sam") == [canceled("s1", "sam", SELL, 0, 300)]
    assert h.balances() == {"sam": {"ABC": (500, 0), "XYZ": (32_000, 18_000)}}
    assert h.cancel("b1", "sam") == [canceled("b1", "sam", BUY, 0, 18_000)]
    assert h.balances() == {"sam": {"ABC": (500, 0), "XYZ": (50_000, 0)}}


def half_applied_book() -> Harness:
    """bids: b1 1 @ 99 (bob); asks: s1 2 @ 101 (sam). bob has 5000 XYZ and 300 ABC free."""
    h = Harness()
    h.deposit("sam", base=200)
    h.deposit("bob", base=300, quote=14_900)
    h.place("s1", "sam", SELL, 101, 2)
    h.place("b1", "bob", BUY, 99, 1)
    h.end_batch()
    return h


def _place(order_id: str, side: str, price: str | None, qty: str, **extra: str) -> dict[str, Any]:
    raw: dict[str, Any] = {"op": "place", "id": order_id, "user": "bob", "side": side, "qty": qty}
    if price is not None:
        raw["price"] = price
    return raw | extra


REFUSED: list[tuple[str, Any, OrderRejected]] = [
    (
        "insufficient funds",  # 1 @ 100 needs 10000 > 5000 free
        _place("x", "buy", "100", "1"),
        rejected("x", "bob", BUY, ResultCode.INSUFFICIENT_FUNDS),
    ),
    (
        "insufficient base",  # 4 lots need 400 ABC > 300
        _place("x", "sell", "120", "4"),
        rejected("x", "bob", SELL, ResultCode.INSUFFICIENT_FUNDS),
    ),
    (
        "fok unfillable",
        _place("x", "sell", "99", "2", tif="FOK"),
        rejected("x", "bob", SELL, ResultCode.FOK_UNFILLABLE, 200),
    ),
    (
        "post only crossing",
        _place("x", "sell", "99", "1", tif="POST_ONLY"),
        rejected("x", "bob", SELL, ResultCode.POST_ONLY_WOULD_CROSS, 100),
    ),
    (
        "duplicate order",
        _place("b1", "sell", "120", "1"),
        rejected("b1", "bob", SELL, ResultCode.DUPLICATE_ORDER, 100),
    ),
    (
        "price not a tick multiple",
        _place("x", "sell", "100.5", "1"),
        rejected("x", "bob", SELL, ResultCode.INVALID_PRICE),
    ),
    (
        "price zero",
        _place("x", "sell", "0", "1"),
        rejected("x", "bob", SELL, ResultCode.INVALID_PRICE, 100),
    ),
    (
        "negative price",
        _place("x", "sell", "-1", "1"),
        rejected("x", "bob", SELL, ResultCode.INVALID_PRICE),
    ),
    (
        "float price",
        {"op": "place", "id": "x", "user": "bob", "side": "sell", "price": 100.0, "qty": "1"},
        rejected("x", "bob", SELL, ResultCode.INVALID_PRICE),
    ),
    (
        "zero qty",
        _place("x", "sell", "120", "0"),
        rejected("x", "bob", SELL, ResultCode.INVALID_QTY),
    ),
    (
        "market with a price",
        _place("x", "sell", "99", "1", type="market"),
        rejected("x", "bob", SELL, ResultCode.INVALID_PRICE),
    ),
    (
        "market with qty and quote_qty",
        _place("x", "buy", None, "1", type="market", quote_qty="10"),
        rejected("x", "bob", BUY, ResultCode.INVALID_QTY, 1_000),
    ),
    (
        "market with neither qty nor quote_qty",
        {"op": "place", "id": "x", "user": "bob", "side": "buy", "type": "market"},
        rejected("x", "bob", BUY, ResultCode.INVALID_QTY),
    ),
    (
        "market sell by quote_qty",
        {
            "op": "place",
            "id": "x",
            "user": "bob",
            "side": "sell",
            "type": "market",
            "quote_qty": "10",
        },
        rejected("x", "bob", SELL, ResultCode.INVALID_COMMAND),
    ),
    (
        "market FOK by quote_qty",
        {
            "op": "place",
            "id": "x",
            "user": "bob",
            "side": "buy",
            "type": "market",
            "quote_qty": "10",
            "tif": "FOK",
        },
        rejected("x", "bob", BUY, ResultCode.INVALID_COMMAND, 1_000),
    ),
    (
        "market POST_ONLY",
        _place("x", "sell", None, "1", type="market", tif="POST_ONLY"),
        rejected("x", "bob", SELL, ResultCode.INVALID_COMMAND, 100),
    ),
    (
        "bad side",
        _place("x", "sideways", "120", "1"),
        rejected("x", "bob", "sideways", ResultCode.INVALID_COMMAND),
    ),
    (
        "bad type",
        _place("x", "sell", "120", "1", type="stop"),
        rejected("x", "bob", SELL, ResultCode.INVALID_COMMAND, 100),
    ),
    (
        "bad tif",
        _place("x", "sell", "120", "1", tif="GTD"),
        rejected("x", "bob", SELL, ResultCode.INVALID_COMMAND, 100),
    ),
    (
        "bad stp",
        _place("x", "sell", "120", "1", stp="DECREMENT"),
        rejected("x", "bob", SELL, ResultCode.INVALID_COMMAND, 100),
    ),
    (
        "missing id",
        {"op": "place", "user": "bob", "side": "sell", "price": "120", "qty": "1"},
        rejected("", "bob", "", ResultCode.INVALID_COMMAND),
    ),
    (
        "unknown op",
        {"op": "amend", "id": "b1", "user": "bob"},
        rejected("", "", "", ResultCode.INVALID_COMMAND, op="amend"),
    ),
    ("not an object", ["place"], rejected("", "", "", ResultCode.INVALID_COMMAND, op="")),
    (
        "cancel not owner",
        {"op": "cancel", "id": "s1", "user": "bob"},
        rejected("s1", "bob", "", ResultCode.NOT_OWNER, op="cancel"),
    ),
    (
        "cancel unknown",
        {"op": "cancel", "id": "zz", "user": "bob"},
        rejected("zz", "bob", "", ResultCode.UNKNOWN_ORDER, op="cancel"),
    ),
    (
        "bad trading state",
        {"op": "halt", "trading": "Paused"},
        rejected("", "", "", ResultCode.INVALID_COMMAND, op="set_trading"),
    ),
    (
        "withdraw beyond free",
        {"op": "withdraw", "user": "bob", "asset": "XYZ", "amount": "50.01"},
        rejected("", "bob", "", ResultCode.INSUFFICIENT_FUNDS, op="withdraw"),
    ),
    (
        "deposit of another asset",
        {"op": "deposit", "user": "bob", "asset": "BTC", "amount": "1"},
        rejected("", "bob", "", ResultCode.INVALID_COMMAND, op="deposit"),
    ),
]


@pytest.mark.parametrize(
    ("command", "expected"), [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED]
)
def test_regression_a_refused_command_changes_nothing(
    command: Any, expected: OrderRejected
) -> None:
    h = half_applied_book()
    before = h.state()
    depth = h.book()
    hash_before = state_hash(h.engine, h.ledger)
    seq_before = h.engine.seq
    assert h.submit(command) == [expected]
    assert h.state() == before  # book, resting orders, counters, dirty levels, every balance
    assert h.book() == depth
    assert h.end_batch() == []  # no level was touched
    assert h.engine.seq == seq_before + 1  # the refusal is the only event
    # state_hash differs only by the seq
    h.engine.seq -= 1
    assert state_hash(h.engine, h.ledger) == hash_before


# ---- rejections -----------------------------------------------------------------------------


def test_insufficient_funds_changes_nothing() -> None:
    h = Harness()
    h.deposit("bob", quote=5_000)
    assert h.place("b1", "bob", BUY, 100, 1) == [
        rejected("b1", "bob", BUY, ResultCode.INSUFFICIENT_FUNDS)
    ]
    assert h.balances() == {"bob": {"XYZ": (5_000, 0)}}
    assert h.book() == ([], [])
    assert h.place("b2", "bob", BUY, 50, 1) == [accepted("b2", "bob", BUY, 50, 1, 5_000)]


def test_engine_refuses_a_lock_that_is_not_exactly_what_the_order_needs() -> None:
    engine = Engine(EASY)

    def place(locked: int, side: Side = BUY) -> list[Event]:
        engine.process(Place("o", "bob", side, LIMIT, 100, 2, 0, GTC, DEFAULT_STP, locked), "i", 0)
        return [norm(event) for event in engine.take_events()]

    # a buy of 2 @ 100 needs 20000; less is insufficient, more is invalid; the lock comes back
    assert place(19_999) == [rejected("o", "bob", BUY, ResultCode.INSUFFICIENT_FUNDS, 19_999)]
    assert place(20_001) == [rejected("o", "bob", BUY, ResultCode.INVALID_COMMAND, 20_001)]
    assert place(199, SELL) == [rejected("o", "bob", SELL, ResultCode.INSUFFICIENT_FUNDS, 199)]
    assert place(201, SELL) == [rejected("o", "bob", SELL, ResultCode.INVALID_COMMAND, 201)]
    assert engine.orders == {}
    assert place(20_000) == [accepted("o", "bob", BUY, 100, 2, 20_000)]
    assert engine.seq == 5


def test_engine_refuses_bad_places_directly() -> None:
    engine = Engine(EASY)
    cases = [
        (Place("o", "bob", BUY, LIMIT, 0, 1, 0, GTC, DEFAULT_STP, 0), ResultCode.INVALID_PRICE),
        (Place("o", "bob", BUY, LIMIT, -5, 1, 0, GTC, DEFAULT_STP, 0), ResultCode.INVALID_PRICE),
        (Place("o", "bob", BUY, LIMIT, 100, 0, 0, GTC, DEFAULT_STP, 0), ResultCode.INVALID_QTY),
        (Place("o", "bob", SELL, LIMIT, 100, -1, 0, GTC, DEFAULT_STP, 0), ResultCode.INVALID_QTY),
        (
            Place("o", "bob", cast(Side, "up"), LIMIT, 100, 1, 0, GTC, DEFAULT_STP, 0),
            ResultCode.INVALID_COMMAND,
        ),
        (Place("o", "", BUY, LIMIT, 100, 1, 0, GTC, DEFAULT_STP, 0), ResultCode.INVALID_COMMAND),
        (Place("", "bob", BUY, LIMIT, 100, 1, 0, GTC, DEFAULT_STP, 0), ResultCode.INVALID_COMMAND),
        (Place("o", "bob", BUY, LIMIT, 100, 1, 5, GTC, DEFAULT_STP, 0), ResultCode.INVALID_COMMAND),
        (
            Place("o", "bob", BUY, MARKET, 100, 1, 0, IOC, DEFAULT_STP, 0),
            ResultCode.INVALID_COMMAND,
        ),
    ]
    for command, code in cases:
        engine.process(command, "i", 0)
        [event] = engine.take_events()
        assert isinstance(event, OrderRejected)
        assert (event.code, event.reason) == (int(code), code.reason), command
    assert engine.orders == {} and engine.trade_seq == 0


def test_invalid_price_from_json() -> None:
    h = Harness()
    h.deposit("bob", quote=100_000)
    for price in ("0", "100.5", "0.99", "1e2", ""):
        raw = {"op": "place", "id": "b1", "user": "bob", "side": "buy", "price": price, "qty": "1"}
        [event] = h.submit(raw)
        assert isinstance(event, OrderRejected)
        assert event.reason == "invalid_price", price
    assert h.balances() == {"bob": {"XYZ": (100_000, 0)}}


def test_below_min_notional() -> None:
    h = Harness(make_rules(minNotional="50.00"))  # 5000 XYZ minor units
    h.deposit("bob", quote=100_000)
    h.deposit("sam", base=100)
    # 1 @ 40 = 4000 < 5000
    assert h.place("b1", "bob", BUY, 40, 1) == [
        rejected("b1", "bob", BUY, ResultCode.BELOW_MIN_NOTIONAL, 4_000)
    ]
    assert h.place("s1", "sam", SELL, 49, 1) == [
        rejected("s1", "sam", SELL, ResultCode.BELOW_MIN_NOTIONAL, 100)
    ]
    assert h.place("m1", "bob", BUY, type=MARKET, quote_qty=4_999) == [
        rejected("m1", "bob", BUY, ResultCode.BELOW_MIN_NOTIONAL, 4_999)
    ]
    # exactly the minimum is fine: 1 @ 50 = 5000
    assert h.place("b2", "bob", BUY, 50, 1) == [accepted("b2", "bob", BUY, 50, 1, 5_000)]
    assert h.place("b3", "bob", BUY, 25, 2) == [accepted("b3", "bob", BUY, 25, 2, 5_000)]
    assert h.balances() == {"bob": {"XYZ": (90_000, 10_000)}, "sam": {"ABC": (100, 0)}}


def test_duplicate_order_while_resting_only() -> None:
    h = Harness()
    h.deposit("bob", quote=100_000)
    h.deposit("sam", base=100)
    h.place("b1", "bob", BUY, 100, 1)
    # the same id while b1 rests: refused, even for another user
    assert h.place("b1", "bob", BUY, 90, 1) == [
        rejected("b1", "bob", BUY, ResultCode.DUPLICATE_ORDER, 9_000)
    ]
    assert h.place("b1", "sam", SELL, 120, 1) == [
        rejected("b1", "sam", SELL, ResultCode.DUPLICATE_ORDER, 100)
    ]
    assert h.resting() == {"b1": (1, 10_000, 0)}
    h.cancel("b1", "bob")
    # gone from the book: the id may be used again
    assert h.place("b1", "bob", BUY, 90, 1) == [accepted("b1", "bob", BUY, 90, 1, 9_000)]


def test_market_halted_cancel_only_and_resume() -> None:
    h = Harness()
    h.deposit("bob", quote=100_000)
    h.place("b1", "bob", BUY, 100, 1)
    h.place("b2", "bob", BUY, 99, 1)
    assert h.submit({"op": "halt"}) == [state("Halted")]
    assert h.engine.trading == "Halted"
    # a place is refused and gives its lock back
    assert h.place("b3", "bob", BUY, 98, 1) == [
        rejected("b3", "bob", BUY, ResultCode.MARKET_HALTED, 9_800)
    ]
    # cancel works while halted
    assert h.cancel("b1", "bob") == [canceled("b1", "bob", BUY, 0, 10_000)]
    assert h.submit({"op": "halt", "trading": "CancelOnly"}) == [state("CancelOnly")]
    assert h.place("m1", "bob", BUY, type=MARKET, quote_qty=100) == [
        rejected("m1", "bob", BUY, ResultCode.MARKET_HALTED, 100)
    ]
    assert h.cancel_all("bob") == [canceled("b2", "bob", BUY, 0, 9_900)]
    assert h.submit({"op": "resume"}) == [state("Enabled")]
    assert h.place("b4", "bob", BUY, 98, 1) == [accepted("b4", "bob", BUY, 98, 1, 9_800)]
    assert h.balances() == {"bob": {"XYZ": (90_200, 9_800)}}
    # the engine's own command does the same
    assert h.submit(SetTrading("Halted")) == [state("Halted")]


def test_invalid_command() -> None:
    h = Harness()
    h.deposit("bob", base=100)
    assert h.submit({"op": "amend", "id": "x"}) == [
        rejected("", "", "", ResultCode.INVALID_COMMAND, op="amend")
    ]
    assert h.submit({"id": "x"}) == [rejected("", "", "", ResultCode.INVALID_COMMAND, op="")]
    assert h.submit(None) == [rejected("", "", "", ResultCode.INVALID_COMMAND, op="")]
    # a bad side is refused before anything is locked
    raw = {"op": "place", "id": "x", "user": "bob", "side": "sideways", "price": "1", "qty": "1"}
    assert h.submit(raw) == [rejected("x", "bob", "sideways", ResultCode.INVALID_COMMAND)]
    assert h.balances() == {"bob": {"ABC": (100, 0)}}


# ---- depth ----------------------------------------------------------------------------------


def test_depth_lists_changed_levels_best_first_with_update_ids() -> None:
    h = Harness()
    h.deposit("alice", quote=100_000)
    h.deposit("sam", base=1_000)
    h.deposit("bob", quote=100_000)
    # batch 1: seqs 1..4, depth 5
    h.place("b1", "alice", BUY, 99, 1)
    h.place("b2", "alice", BUY, 100, 2)
    h.place("s1", "sam", SELL, 102, 1)
    h.place("s2", "sam", SELL, 101, 3)
    assert h.end_batch() == [
        Depth(M, 5, "in-4", 4, 1, 5, [(100, 2), (99, 1)], [(101, 3), (102, 1)])
    ]
    # batch 2: bob takes all of 101 (seqs 6-9), alice cancels b1 (10), adds to 100 (11),
    # sam adds 103 (12): depth 13 covers 6..13
    h.place("x", "bob", BUY, 101, 3)
    h.cancel("b1", "alice")
    h.place("b3", "alice", BUY, 100, 1)
    h.place("s3", "sam", SELL, 103, 1)
    assert h.end_batch() == [
        Depth(M, 13, "in-8", 8, 6, 13, [(100, 3), (99, 0)], [(101, 0), (103, 1)])
    ]
    # a batch that touches nothing emits nothing; the next one follows on from 13
    assert h.end_batch() == []
    h.deposit("carol", base=100)
    h.place("c1", "carol", SELL, 100, 1, tif=IOC)  # seqs 14-16, takes 1 from b2 at 100
    assert h.end_batch() == [Depth(M, 17, "in-9", 9, 14, 17, [(100, 2)], [])]
    assert h.book() == ([(100, 2)], [(102, 1), (103, 1)])


# ---- snapshot -------------------------------------------------------------------------------

SETUP: list[dict[str, Any] | str] = [
    {"op": "deposit", "user": "alice", "asset": "XYZ", "amount": "1000"},
    {"op": "deposit", "user": "alice", "asset": "ABC", "amount": "10"},
    {"op": "deposit", "user": "bob", "asset": "XYZ", "amount": "1000"},
    {"op": "deposit", "user": "bob", "asset": "ABC", "amount": "10"},
    {"op": "deposit", "user": "sam", "asset": "ABC", "amount": "10"},
    {"op": "place", "id": "z1", "user": "alice", "side": "buy", "price": "95", "qty": "2"},
    {"op": "place", "id": "a2", "user": "alice", "side": "buy", "price": "97", "qty": "1"},
    {"op": "place", "id": "m3", "user": "alice", "side": "sell", "price": "110", "qty": "2"},
    {"op": "place", "id": "s1", "user": "sam", "side": "sell", "price": "105", "qty": "1"},
    {"op": "place", "id": "s2", "user": "bob", "side": "sell", "price": "105", "qty": "2"},
    {"op": "place", "id": "b1", "user": "bob", "side": "buy", "price": "96", "qty": "1"},
    {"op": "place", "id": "s3", "user": "sam", "side": "sell", "price": "104", "qty": "3"},
    {"op": "place", "id": "x4", "user": "alice", "side": "buy", "price": "104", "qty": "1"},
    "end_batch",
    {"op": "cancel", "id": "b1", "user": "bob"},  # its level stays dirty across the snapshot
]
CONTINUATION: list[dict[str, Any] | str] = [
    # 2 @ 104 from s3, then s1 (older than s2) at 105
    {"op": "place", "id": "y5", "user": "alice", "side": "buy", "price": "105", "qty": "3"},
    {"op": "cancel_all", "user": "alice"},  # z1, a2, m3: placement order
    {"op": "place", "id": "s4", "user": "sam", "side": "sell", "price": "103", "qty": "1"},
    # s4 at 103, then bob's own s2 at 105 expires (EXPIRE_MAKER), then nothing: expired
    {
        "op": "place",
        "id": "b2",
        "user": "bob",
        "side": "buy",
        "price": "105",
        "qty": "3",
        "tif": "IOC",
    },
    {"op": "place", "id": "q", "user": "bob", "side": "sell", "type": "market", "qty": "1"},
    "end_batch",
]


def run_script(session: ReplaySession, script: list[Any], start: int) -> list[Event]:
    events: list[Event] = []
    for n, command in enumerate(script, start):
        if command == "end_batch":
            session.end_batch(str(n), n)
        else:
            session.submit(command, str(n), n)
        events.extend(session.engine.take_events())
    return events


def test_snapshot_round_trip_then_identical_continuation() -> None:
    original = ReplaySession(EASY)
    run_script(original, SETUP, 1)
    engine_bytes, ledger_bytes = dump_engine(original.engine), dump_ledger(original.ledger)
    restored = ReplaySession(
        EASY, load_engine(EASY, engine_bytes), load_ledger([EASY], ledger_bytes)
    )
    assert state_hash(restored.engine, restored.ledger) == state_hash(
        original.engine, original.ledger
    )
    assert dump_engine(restored.engine) == engine_bytes
    start = len(SETUP) + 1
    expected = run_script(original, CONTINUATION, start)
    got = run_script(restored, CONTINUATION, start)
    assert got == expected
    assert state_hash(restored.engine, restored.ledger) == state_hash(
        original.engine, original.ledger
    )
    check_invariants(restored.engine, restored.ledger)
    # what the continuation did, as hand-checked
    kinds = [(type(e).__name__, getattr(e, "order_id", getattr(e, "maker_order", ""))) for e in got]
    assert kinds == [
        ("OrderAccepted", "y5"),
        ("Trade", "s3"),
        ("OrderDone", "s3"),
        ("Trade", "s1"),
        ("OrderDone", "s1"),
        ("OrderDone", "y5"),
        ("OrderDone", "z1"),  # cancel_all: oldest first, survived the restore
        ("OrderDone", "a2"),
        ("OrderDone", "m3"),
        ("OrderAccepted", "s4"),
        ("OrderAccepted", "b2"),
        ("Trade", "s4"),
        ("OrderDone", "s4"),
        ("OrderDone", "s2"),  # bob's own maker, expired by self-trade prevention
        ("OrderDone", "b2"),
        ("OrderAccepted", "q"),
        ("OrderDone", "q"),
        ("Depth", ""),
    ]
    depth = got[-1]
    assert isinstance(depth, Depth)
    # the bid at 96 canceled before the snapshot is in the first depth after it
    assert depth.bids == [(97, 0), (96, 0), (95, 0)]
    assert depth.asks == [(103, 0), (104, 0), (105, 0), (110, 0)]
    assert restored.engine.orders == {}


def test_snapshot_keeps_fifo_within_a_level() -> None:
    h = Harness()
    h.deposit("sam", base=100)
    h.deposit("sue", base=100)
    h.deposit("bob", quote=10_000)
    h.place("s1", "sam", SELL, 100, 1)
    h.place("s2", "sue", SELL, 100, 1)
    engine = load_engine(EASY, dump_engine(h.engine))
    assert [o.order_id for o in engine.asks.live_orders(100)] == ["s1", "s2"]
    assert list(engine.by_user) == ["sam", "sue"]
    assert {k: fields(o) for k, o in engine.orders.items()} == {
        "s1": ("s1", "sam", SELL, 100, 1, 100, 0),
        "s2": ("s2", "sue", SELL, 100, 1, 100, 0),
    }
    assert fields(engine.by_user["sue"]["s2"]) == fields(h.engine.orders["s2"])


def _garbage() -> list[bytes]:
    good = engine_state(Engine(EASY))
    return [
        b"",
        b"garbage",
        b"\xc1",
        msgspec.msgpack.encode({}),
        msgspec.msgpack.encode([1, 2, 3]),
        msgspec.msgpack.encode("snapshot"),
        msgspec.msgpack.encode(good | {"market": "btc-usd"}),
        msgspec.msgpack.encode(good | {"v": 99}),
        msgspec.msgpack.encode({k: v for k, v in good.items() if k != "orders"}),
        msgspec.msgpack.encode(good | {"orders": [["o1", "bob"]]}),
        msgspec.msgpack.encode(good | {"stops": [[{"kind": "place"}, 0, 0, 1]]}),
        msgspec.msgpack.encode(good | {"stops": [["x1"]]}),
        msgspec.msgpack.encode(good)[:-3],
    ]


@pytest.mark.parametrize("data", _garbage())
def test_load_engine_refuses_garbage(data: bytes) -> None:
    with pytest.raises(SnapshotError):
        load_engine(EASY, data)


# ---- events carry the command's input id and time -------------------------------------------


def test_events_carry_input_id_and_ts() -> None:
    session = ReplaySession(EASY)
    session.ledger.deposit("sam", "ABC", 100)
    session.ledger.deposit("bob", "XYZ", 10_000)
    place = Place("s1", "sam", SELL, LIMIT, 100, 1, 0, GTC, DEFAULT_STP, 0)
    session.submit_parsed(place, "1700000000000-0", 1_700_000_000_000)
    session.submit(
        {"op": "place", "id": "b1", "user": "bob", "side": "buy", "price": "100", "qty": "1"},
        "1700000000001-0",
        1_700_000_000_001,
    )
    session.end_batch("1700000000001-0", 1_700_000_000_001)
    events = session.engine.take_events()
    assert [(e.seq, e.input_id, e.ts) for e in events] == [
        (1, "1700000000000-0", 1_700_000_000_000),
        (2, "1700000000001-0", 1_700_000_000_001),
        (3, "1700000000001-0", 1_700_000_000_001),
        (4, "1700000000001-0", 1_700_000_000_001),
        (5, "1700000000001-0", 1_700_000_000_001),
        (6, "1700000000001-0", 1_700_000_000_001),
    ]
    assert all(e.market == M for e in events)
    assert [type(e) for e in events] == [
        OrderAccepted,
        OrderAccepted,
        Trade,
        OrderDone,
        OrderDone,
        Depth,
    ]


# ---- regressions of bugs found by these tests ------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        _place("x", "sell", "1", "1" + "0" * 30),
        _place("x", "buy", "1" + "0" * 30, "1"),
        {"op": "deposit", "user": "bob", "asset": "XYZ", "amount": "1" + "0" * 30},
    ],
    ids=["qty", "price", "deposit"],
)
def test_huge_json_amount_is_refused_not_raised(command: Any) -> None:
    h = half_applied_book()
    before = h.state()
    events = h.submit(command)  # today: decimal.InvalidOperation
    # refused (invalid_qty / invalid_price / insufficient_funds) and nothing changed, or, for
    # an exact conversion, the deposit of exactly 10**32 minor units
    if command["op"] == "deposit":
        assert events in (
            [Funds(M, 0, "", 0, "bob", "XYZ", 10**32)],
            [rejected("", "bob", "", ResultCode.INVALID_COMMAND, op="deposit")],
        )
    else:
        [event] = events
        assert isinstance(event, OrderRejected)
        assert event.unlocked == 0
        assert h.state() == before


def test_refused_place_of_an_unfunded_user_leaves_the_state_hash_unchanged() -> None:
    h = Harness()
    h.deposit("sam", base=100)
    hash_before = state_hash(h.engine, h.ledger)
    assert h.place("b1", "bob", BUY, 100, 1) == [
        rejected("b1", "bob", BUY, ResultCode.INSUFFICIENT_FUNDS)
    ]
    assert h.balances() == {"sam": {"ABC": (100, 0)}}  # balances are right...
    h.engine.seq -= 1
    assert state_hash(h.engine, h.ledger) == hash_before  # ...but the hash has moved
