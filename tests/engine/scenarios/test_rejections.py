"""Engine scenarios (see tests/engine/scenarios/common.py for the market and the harness).

Rejections: refused commands change nothing.
"""

from typing import cast

from engine.core import Engine
from tests.engine.scenarios.common import (
    EASY,
    Harness,
    accepted,
    canceled,
    make_rules,
    norm,
    rejected,
    state,
)
from xch.schemas import (
    BUY,
    DEFAULT_STP,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    SELL,
    Event,
    OrderRejected,
    Place,
    ResultCode,
    SetTrading,
    Side,
)


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
