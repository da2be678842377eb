"""Hand-computed scenarios for stop orders and OCO lists (docs/engine.md, "Stop orders").

The market and the harness are tests/engine/scenarios/common.py's: ABC/XYZ, 1 lot = 100 ABC
minor units, 1 tick x 1 lot = 100 XYZ minor units, maker 10 bps, taker 20 bps, fees rounded
up; after every command the harness checks the invariants, including the hidden-funds one: what each
user has locked equals what their open orders and waiting stops hold, a lone stop holding
exactly what the order it becomes needs and an OCO list's two legs together what the list
locked, and no stop the last price has reached is left waiting.
"""

from typing import Any, cast

import msgspec
import pytest

from engine.core import Engine
from engine.snapshot import dump_engine, load_engine, state_hash
from ledger.locks import list_lock, lock_amount
from tests.engine.scenarios.common import (
    EASY,
    Harness,
    accepted,
    canceled,
    expired,
    filled,
    make_rules,
    rejected,
    state,
    trade,
)
from xch.market import Trading
from xch.schemas import (
    BUY,
    CANCELED,
    DEFAULT_STP,
    EXPIRED,
    FOK,
    GTC,
    IOC,
    LIMIT,
    POST_ONLY,
    REASON_FOK,
    REASON_MARKET_CLOSED,
    REASON_OCO,
    REASON_POST_ONLY,
    REASON_TIME_IN_FORCE,
    SELL,
    STOP_LOSS,
    STOP_LOSS_LIMIT,
    TAKE_PROFIT,
    TAKE_PROFIT_LIMIT,
    OrderAccepted,
    OrderDone,
    OrderTriggered,
    OrderType,
    Place,
    PlaceList,
    ResultCode,
    SetTrading,
    Side,
    TimeInForce,
)

M = EASY.name
replace = msgspec.structs.replace


def stop(
    order_id: str,
    user: str,
    side: Side,
    order_type: OrderType,
    stop_price: int,
    qty: int = 0,
    price: int = 0,
    *,
    tif: TimeInForce = GTC,
    quote_qty: int = 0,
) -> Place:
    return Place(
        order_id,
        user,
        side,
        order_type,
        price,
        qty,
        quote_qty,
        tif,
        DEFAULT_STP,
        0,
        stop_price=stop_price,
    )


def stop_accepted(
    order: Place, locked: int, *, tif: TimeInForce | None = None, list_id: str = ""
) -> OrderAccepted:
    base = accepted(
        order.order_id,
        order.user,
        order.side,
        order.price,
        order.qty,
        locked,
        type=order.type,
        tif=tif or order.tif,
        quote_qty=order.quote_qty,
    )
    return replace(base, stop_price=order.stop_price, list_id=list_id)


def triggered(order_id: str, user: str, side: Side, stop_price: int, last: int) -> OrderTriggered:
    return OrderTriggered(M, 0, "", 0, order_id, user, side, stop_price, last)


def ended(
    order_id: str, user: str, side: Side, status: str, reason: str, unlocked: int
) -> OrderDone:
    return OrderDone(M, 0, "", 0, order_id, user, side, status, reason, 0, unlocked)


def limit_maker(order_id: str, user: str, side: Side, price: int, qty: int) -> Place:
    return Place(order_id, user, side, LIMIT, price, qty, 0, POST_ONLY, DEFAULT_STP, 0)


def at_100(h: Harness) -> None:
    """A first trade at 100 (bob buys 1 from carol): the last price is 100."""
    h.deposit("bob", quote=1_000_000)
    h.deposit("carol", base=10_000)
    h.place("b0", "bob", BUY, 100, 1)
    h.place("s0", "carol", SELL, 100, 1)
    assert h.engine.last_price == 100


# ---- each stop type, up and down ------------------------------------------------------------


def test_stop_loss_sell_waits_hidden_then_sells_at_market_when_the_price_falls() -> None:
    h = Harness()
    at_100(h)
    h.deposit("alice", base=200)
    h.place("b2", "bob", BUY, 98, 2)
    h.place("b3", "bob", BUY, 97, 2)
    h.end_batch()
    x1 = stop("x1", "alice", SELL, STOP_LOSS, 99, 2)
    # A stop-market sells its quantity: it locks 2 lots = 200 ABC; GTC means IOC for it.
    assert h.submit(x1) == [stop_accepted(x1, 200, tif=IOC)]
    assert h.end_batch() == [], "a waiting stop is not in the book"
    # carol sells 1 @ 98 into b2: the last price 98 <= 99 triggers x1 within the same input,
    # which sells 2 at market: 1 @ 98 (b2's last lot), 1 @ 97.
    # Fees: maker (buyer) ceil(100 * 10 / 10000) = 1 ABC; taker (seller) ceil(9800 * 20 /
    # 10000) = 20 XYZ and ceil(9700 * 20 / 10000) = 20 XYZ.
    assert h.place("s1", "carol", SELL, 98, 1) == [
        accepted("s1", "carol", SELL, 98, 1, 100),
        trade(2, 98, 1, 9_800, ("b2", "bob"), ("s1", "carol"), SELL, 1, 20),
        filled("s1", "carol", SELL, 1, 0),
        triggered("x1", "alice", SELL, 99, 98),
        trade(3, 98, 1, 9_800, ("b2", "bob"), ("x1", "alice"), SELL, 1, 20),
        filled("b2", "bob", BUY, 2, 0),
        trade(4, 97, 1, 9_700, ("b3", "bob"), ("x1", "alice"), SELL, 1, 20),
        filled("x1", "alice", SELL, 2, 0),
    ]
    assert h.book() == ([(97, 1)], [])
    assert h.balances()["alice"] == {"XYZ": (9_780 + 9_680, 0)}
    assert h.engine.last_price == 97


def test_stop_loss_limit_buy_triggers_when_the_price_rises_and_rests_its_limit() -> None:
    h = Harness()
    at_100(h)
    h.deposit("alice", quote=30_000)
    h.place("s1", "carol", SELL, 101, 1)
    h.place("s2", "carol", SELL, 103, 1)
    x1 = stop("x1", "alice", BUY, STOP_LOSS_LIMIT, 101, 2, 102)
    # It will be a limit buy 2 @ 102: it locks 102 * 2 * 100 = 20400 XYZ now.
    assert h.submit(x1) == [stop_accepted(x1, 20_400)]
    # bob takes s1 at 101: 101 >= 101 triggers x1, a limit buy 2 @ 102; the best ask is now
    # 103, so it rests whole and keeps its 20400.
    assert h.place("b1", "bob", BUY, 101, 1) == [
        accepted("b1", "bob", BUY, 101, 1, 10_100),
        trade(2, 101, 1, 10_100, ("s1", "carol"), ("b1", "bob"), BUY, 11, 1),
        filled("s1", "carol", SELL, 1, 0),
        filled("b1", "bob", BUY, 1, 0),
        triggered("x1", "alice", BUY, 101, 101),
    ]
    assert h.book() == ([(102, 2)], [(103, 1)])
    assert h.resting()["x1"] == (2, 20_400, 0)
    assert h.balances()["alice"] == {"XYZ": (9_600, 20_400)}


def test_take_profit_limit_sell_triggers_on_a_rise() -> None:
    h = Harness()
    at_100(h)
    h.deposit("alice", base=100)
    h.place("s1", "carol", SELL, 105, 1)
    x1 = stop("x1", "alice", SELL, TAKE_PROFIT_LIMIT, 105, 1, 104)
    assert h.submit(x1) == [stop_accepted(x1, 100)]
    # bob lifts 105: x1 becomes a limit sell 1 @ 104, below bob's nothing: it rests.
    events = h.place("b1", "bob", BUY, 105, 1)
    assert events[-1] == triggered("x1", "alice", SELL, 105, 105)
    assert h.book() == ([], [(104, 1)])


def test_take_profit_buy_triggers_on_a_fall_and_buys_at_market() -> None:
    h = Harness()
    at_100(h)
    h.deposit("alice", quote=20_000)
    x1 = stop("x1", "alice", BUY, TAKE_PROFIT, 95, 1)
    # A stop-market buy by quantity locks 1 lot at the stop price plus 5%:
    # ceil(95 * 1 * 100 * 10500 / 10000) = 9975 XYZ.
    assert lock_amount(EASY, x1) == 9_975
    assert h.submit(x1) == [stop_accepted(x1, 9_975, tif=IOC)]
    h.place("b1", "bob", BUY, 95, 1)
    h.place("a1", "carol", SELL, 96, 1)
    # carol sells 1 @ 95 to bob: 95 <= 95 triggers x1, which buys carol's ask at 96 within its
    # 9975 budget: 9600 spent, 375 back. Maker (seller) fee ceil(9600 * 10 / 10000) = 10 XYZ,
    # taker (buyer) fee ceil(100 * 20 / 10000) = 1 ABC.
    assert h.place("s1", "carol", SELL, 95, 1)[-4:] == [
        triggered("x1", "alice", BUY, 95, 95),
        trade(3, 96, 1, 9_600, ("a1", "carol"), ("x1", "alice"), BUY, 10, 1),
        filled("a1", "carol", SELL, 1, 0),
        filled("x1", "alice", BUY, 1, 375),
    ]
    assert h.balances()["alice"] == {"ABC": (99, 0), "XYZ": (20_000 - 9_600, 0)}


def test_a_stop_market_buy_that_the_price_outruns_spends_its_allowance_and_expires() -> None:
    h = Harness()
    at_100(h)
    h.deposit("alice", quote=30_000)
    x1 = stop("x1", "alice", BUY, STOP_LOSS, 101, 2)
    # locks ceil(101 * 2 * 100 * 1.05) = 21210
    assert h.submit(x1) == [stop_accepted(x1, 21_210, tif=IOC)]
    h.place("s1", "carol", SELL, 101, 1)
    h.place("s2", "carol", SELL, 120, 5)
    # bob takes 101; x1 buys 1 @ 120 (12000 of its 21210); the second lot would cost 12000
    # more than the 9210 left: the rest expires and 9210 goes back.
    assert h.place("b1", "bob", BUY, 101, 1)[-3:] == [
        triggered("x1", "alice", BUY, 101, 101),
        trade(3, 120, 1, 12_000, ("s2", "carol"), ("x1", "alice"), BUY, 12, 1),
        expired("x1", "alice", BUY, REASON_TIME_IN_FORCE, 1, 9_210),
    ]


def test_a_stop_market_buy_by_quote_amount_spends_that_amount() -> None:
    h = Harness()
    at_100(h)
    h.deposit("alice", quote=10_000)
    x1 = stop("x1", "alice", BUY, STOP_LOSS, 101, quote_qty=10_000)
    assert h.submit(x1) == [stop_accepted(x1, 10_000, tif=IOC)]
    h.place("s1", "carol", SELL, 101, 1)
    h.place("s2", "carol", SELL, 102, 1)
    events = h.place("b1", "bob", BUY, 101, 1)
    # 10000 buys nothing at 102 (10200 a lot): the budget cannot buy a lot, it expires whole.
    assert events[-2:] == [
        triggered("x1", "alice", BUY, 101, 101),
        expired("x1", "alice", BUY, REASON_TIME_IN_FORCE, 0, 10_000),
    ]


# ---- gaps, order, cascades ------------------------------------------------------------------


def test_a_gap_through_several_stops_triggers_them_by_stop_price_then_arrival() -> None:
    h = Harness()
    at_100(h)
    h.deposit("alice", quote=100_000)
    h.deposit("dave", quote=100_000)
    for price in (101, 102, 103, 104, 105):
        h.place(f"s{price}", "carol", SELL, price, 1)
    # Buy stop-limits at 104, 102 (alice, then dave), 102 (alice) and 106, placed out of order.
    for order_id, user, stop_price in (
        ("x104", "alice", 104),
        ("x102a", "dave", 102),
        ("x102b", "alice", 102),
        ("x106", "alice", 106),
    ):
        h.submit(stop(order_id, user, BUY, STOP_LOSS_LIMIT, stop_price, 1, 90))
    # bob sweeps 101..104 in one order: the last price 104 reached 102, 102 and 104, which
    # trigger in stop-price order, equal prices oldest first; 106 waits. Each becomes a limit
    # buy @ 90 and rests.
    events = h.place("b1", "bob", BUY, 104, 4)
    assert [e.order_id for e in events if isinstance(e, OrderTriggered)] == [
        "x102a",
        "x102b",
        "x104",
    ]
    assert h.book() == ([(90, 3)], [(105, 1)])
    assert list(h.engine.stops.by_id) == ["x106"]


def test_stops_cascade_in_one_input_each_execution_setting_off_the_next() -> None:
    h = Harness()
    at_100(h)
    h.deposit("alice", base=1_000)
    for price in (99, 98, 97, 96):
        h.place(f"b{price}", "bob", BUY, price, 1)
    # Stop-loss sells at 99 (x1, 1 lot), 98 (x2, 2 lots) and 90 (x3, 1 lot).
    h.submit(stop("x1", "alice", SELL, STOP_LOSS, 99, 1))
    h.submit(stop("x2", "alice", SELL, STOP_LOSS, 98, 2))
    h.submit(stop("x3", "alice", SELL, STOP_LOSS, 90, 1))
    # carol sells 1 @ 99 to b99: the last price 99 triggers x1, which sells to b98: 98
    # triggers x2, which sells to b97 and b96: 96 reaches no more stops; x3 waits.
    # Taker (seller) fees: ceil(p * 100 * 20 / 10000) = 20 XYZ for p in 96..99.
    assert h.place("s1", "carol", SELL, 99, 1) == [
        accepted("s1", "carol", SELL, 99, 1, 100),
        trade(2, 99, 1, 9_900, ("b99", "bob"), ("s1", "carol"), SELL, 1, 20),
        filled("b99", "bob", BUY, 1, 0),
        filled("s1", "carol", SELL, 1, 0),
        triggered("x1", "alice", SELL, 99, 99),
        trade(3, 98, 1, 9_800, ("b98", "bob"), ("x1", "alice"), SELL, 1, 20),
        filled("b98", "bob", BUY, 1, 0),
        filled("x1", "alice", SELL, 1, 0),
        triggered("x2", "alice", SELL, 98, 98),
        trade(4, 97, 1, 9_700, ("b97", "bob"), ("x2", "alice"), SELL, 1, 20),
        filled("b97", "bob", BUY, 1, 0),
        trade(5, 96, 1, 9_600, ("b96", "bob"), ("x2", "alice"), SELL, 1, 20),
        filled("b96", "bob", BUY, 1, 0),
        filled("x2", "alice", SELL, 2, 0),
    ]
    assert h.engine.last_price == 96
    assert list(h.engine.stops.by_id) == ["x3"]
    assert h.balances()["alice"] == {"ABC": (600, 100), "XYZ": (9_780 + 9_680 + 9_580, 0)}


def test_a_triggered_stop_can_trigger_stops_on_the_other_side_of_a_move() -> None:
    h = Harness()
    at_100(h)
    h.deposit("alice", quote=100_000)
    h.deposit("dave", base=1_000)
    h.place("b99", "bob", BUY, 99, 1)
    h.place("a102", "carol", SELL, 102, 1)
    # alice's take-profit buy at 99 (falls) buys at market, lifting the price to 102, which
    # triggers dave's take-profit sell at 101 (rises): a cascade that turns around.
    h.submit(stop("x1", "alice", BUY, TAKE_PROFIT, 99, 1))
    h.submit(stop("y1", "dave", SELL, TAKE_PROFIT_LIMIT, 101, 1, 101))
    events = h.place("s1", "carol", SELL, 99, 1)
    assert [e.order_id for e in events if isinstance(e, OrderTriggered)] == ["x1", "y1"]
    assert h.engine.last_price == 102
    assert h.book() == ([], [(101, 1)])


# ---- placing: refusals ----------------------------------------------------------------------


def test_a_stop_the_last_price_already_reached_is_refused_and_unlocked() -> None:
    h = Harness()
    h.deposit("alice", base=300, quote=30_000)
    # Before any trade there is no last price: any stop waits.
    x0 = stop("x0", "alice", SELL, STOP_LOSS, 99, 1)
    assert h.submit(x0) == [stop_accepted(x0, 100, tif=IOC)]
    at_100(h)
    assert h.submit(stop("x1", "alice", SELL, STOP_LOSS, 100, 1)) == [
        rejected("x1", "alice", SELL, ResultCode.STOP_WOULD_TRIGGER, 100)
    ]
    assert h.submit(stop("x2", "alice", BUY, STOP_LOSS_LIMIT, 99, 1, 99)) == [
        rejected("x2", "alice", BUY, ResultCode.STOP_WOULD_TRIGGER, 9_900)
    ]
    assert h.submit(stop("x3", "alice", SELL, TAKE_PROFIT, 100, 1)) == [
        rejected("x3", "alice", SELL, ResultCode.STOP_WOULD_TRIGGER, 100)
    ]
    assert h.balances()["alice"] == {"ABC": (200, 100), "XYZ": (30_000, 0)}


@pytest.mark.parametrize(
    ("order", "code"),
    [
        (stop("x", "alice", SELL, STOP_LOSS, 0, 1), ResultCode.INVALID_STOP_PRICE),
        (stop("x", "alice", SELL, STOP_LOSS, -5, 1), ResultCode.INVALID_STOP_PRICE),
        (stop("x", "alice", SELL, STOP_LOSS, 90, 1, 95), ResultCode.INVALID_COMMAND),
        (stop("x", "alice", SELL, STOP_LOSS_LIMIT, 90, 1), ResultCode.INVALID_PRICE),
        (stop("x", "alice", SELL, STOP_LOSS_LIMIT, 90, 0, 90), ResultCode.INVALID_QTY),
        (stop("x", "alice", SELL, STOP_LOSS, 90, 1, quote_qty=5), ResultCode.INVALID_QTY),
        (stop("x", "alice", SELL, STOP_LOSS, 90, quote_qty=5), ResultCode.INVALID_COMMAND),
        (
            stop("x", "alice", SELL, STOP_LOSS_LIMIT, 90, 1, 90, tif=cast(TimeInForce, "DAY")),
            ResultCode.INVALID_COMMAND,
        ),
        (
            stop("x", "alice", BUY, STOP_LOSS, 110, quote_qty=900, tif=FOK),
            ResultCode.INVALID_COMMAND,
        ),
        (
            Place("x", "alice", SELL, LIMIT, 90, 1, 0, GTC, DEFAULT_STP, 0, stop_price=90),
            ResultCode.INVALID_STOP_PRICE,
        ),
    ],
)
def test_malformed_stops_are_refused_with_their_lock_back(order: Place, code: ResultCode) -> None:
    h = Harness()
    h.deposit("alice", base=1_000, quote=100_000)
    before = h.balances()
    events = h.submit(order)
    assert [(type(e).__name__, getattr(e, "reason", "")) for e in events] == [
        ("OrderRejected", code.reason)
    ]
    assert h.balances() == before
    assert not h.engine.stops.by_id


def test_stop_min_notional_is_checked_at_the_stop_price() -> None:
    h = Harness(make_rules(minNotional="100.00"))  # 10000 XYZ minor units
    h.deposit("alice", base=1_000)
    # 1 lot at a stop price of 99 is worth 9900 < 10000
    assert h.submit(stop("x1", "alice", SELL, STOP_LOSS, 99, 1)) == [
        rejected("x1", "alice", SELL, ResultCode.BELOW_MIN_NOTIONAL, 100)
    ]


def test_a_stop_id_is_unique_among_open_orders_and_stops() -> None:
    h = Harness()
    h.deposit("alice", base=1_000)
    h.place("o1", "alice", SELL, 120, 1)
    h.submit(stop("x1", "alice", SELL, STOP_LOSS, 90, 1))
    assert h.submit(stop("o1", "alice", SELL, STOP_LOSS, 90, 1))[0] == rejected(
        "o1", "alice", SELL, ResultCode.DUPLICATE_ORDER, 100
    )
    assert h.place("x1", "alice", SELL, 130, 1)[0] == rejected(
        "x1", "alice", SELL, ResultCode.DUPLICATE_ORDER, 100
    )


# ---- triggered, but cannot execute -----------------------------------------------------------


def test_a_triggered_post_only_stop_limit_that_would_take_ends_with_its_funds_back() -> None:
    h = Harness()
    at_100(h)
    h.deposit("alice", quote=20_000)
    x1 = stop("x1", "alice", BUY, STOP_LOSS_LIMIT, 101, 1, 105, tif=POST_ONLY)
    h.submit(x1)
    h.place("s1", "carol", SELL, 101, 1)
    h.place("s2", "carol", SELL, 104, 1)
    # At the trigger the best ask, 104, is below its limit 105: post-only would take.
    assert h.place("b1", "bob", BUY, 101, 1)[-2:] == [
        triggered("x1", "alice", BUY, 101, 101),
        ended("x1", "alice", BUY, EXPIRED, REASON_POST_ONLY, 10_500),
    ]
    assert h.balances()["alice"] == {"XYZ": (20_000, 0)}
    assert h.book() == ([], [(104, 1)])


def test_a_triggered_fill_or_kill_stop_limit_that_cannot_fill_ends_with_its_funds_back() -> None:
    h = Harness()
    at_100(h)
    h.deposit("alice", base=300)
    h.submit(stop("x1", "alice", SELL, STOP_LOSS_LIMIT, 99, 3, 95, tif=FOK))
    h.place("b99", "bob", BUY, 99, 1)
    h.place("b96", "bob", BUY, 96, 1)
    # carol's sell at 99 leaves one bid (96) above the limit 95: 1 lot of 3.
    assert h.place("s1", "carol", SELL, 99, 1)[-2:] == [
        triggered("x1", "alice", SELL, 99, 99),
        ended("x1", "alice", SELL, EXPIRED, REASON_FOK, 300),
    ]
    assert h.book() == ([(96, 1)], [])


# ---- cancel, halt, close --------------------------------------------------------------------


def test_a_canceled_stop_gives_its_lock_back_and_never_triggers() -> None:
    h = Harness()
    at_100(h)
    h.deposit("alice", base=200)
    h.submit(stop("x1", "alice", SELL, STOP_LOSS, 99, 2))
    assert h.cancel("x1", "bob") == [
        rejected("x1", "bob", "", ResultCode.UNKNOWN_ORDER, op="cancel")
    ]
    assert h.cancel("x1", "alice") == [canceled("x1", "alice", SELL, 0, 200)]
    assert h.cancel("x1", "alice") == [
        rejected("x1", "alice", "", ResultCode.UNKNOWN_ORDER, op="cancel")
    ]
    h.place("b1", "bob", BUY, 98, 1)
    events = h.place("s1", "carol", SELL, 98, 1)
    assert not any(isinstance(e, OrderTriggered) for e in events)
    assert h.balances()["alice"] == {"ABC": (200, 0)}


def test_cancel_all_takes_open_orders_then_stops() -> None:
    h = Harness()
    h.deposit("alice", base=1_000)
    h.submit(stop("x1", "alice", SELL, STOP_LOSS, 90, 1))
    h.place("o1", "alice", SELL, 120, 2)
    h.submit(stop("x2", "alice", SELL, TAKE_PROFIT, 130, 3))
    assert h.cancel_all("alice") == [
        canceled("o1", "alice", SELL, 0, 200),
        canceled("x1", "alice", SELL, 0, 100),
        canceled("x2", "alice", SELL, 0, 300),
    ]
    assert h.balances()["alice"] == {"ABC": (1_000, 0)}


def test_stops_wait_through_a_halt_and_trigger_on_the_first_trade_after_it() -> None:
    h = Harness()
    at_100(h)
    h.deposit("alice", base=300)
    h.submit(stop("x1", "alice", SELL, STOP_LOSS, 99, 1))
    h.submit(SetTrading(Trading.HALTED.value))
    # A halted market trades nothing, so nothing triggers; new stops are refused.
    assert h.submit(stop("x2", "alice", SELL, STOP_LOSS, 98, 1)) == [
        rejected("x2", "alice", SELL, ResultCode.MARKET_HALTED, 100)
    ]
    assert h.place("s1", "carol", SELL, 90, 1)[0].reason == "market_halted"  # type: ignore[union-attr]
    h.submit(SetTrading(Trading.CANCEL_ONLY.value))
    assert list(h.engine.stops.by_id) == ["x1"]
    assert h.submit(SetTrading(Trading.ENABLED.value)) == [state(Trading.ENABLED.value)]
    h.place("b1", "bob", BUY, 99, 2)
    events = h.place("s2", "carol", SELL, 99, 1)
    assert events[-4:] == [
        triggered("x1", "alice", SELL, 99, 99),
        trade(3, 99, 1, 9_900, ("b1", "bob"), ("x1", "alice"), SELL, 1, 20),
        filled("b1", "bob", BUY, 2, 0),
        filled("x1", "alice", SELL, 1, 0),
    ]


def test_close_cancels_stops_and_lists_too() -> None:
    h = Harness()
    h.deposit("alice", base=1_000)
    h.submit(stop("x1", "alice", SELL, STOP_LOSS, 90, 1))
    h.submit(oco("l1", "alice", limit_maker("la", "alice", SELL, 110, 2), stop_leg("lb", 95)))
    events = h.submit({"op": "close"})
    assert [(e.order_id, e.status, e.reason) for e in events[:-1]] == [  # type: ignore[union-attr]
        ("la", CANCELED, REASON_MARKET_CLOSED),
        ("lb", CANCELED, REASON_MARKET_CLOSED),
        ("x1", CANCELED, REASON_MARKET_CLOSED),
    ]
    assert h.balances()["alice"] == {"ABC": (1_000, 0)}
    assert not h.engine.stops.by_id and not h.engine.siblings


# ---- OCO lists ------------------------------------------------------------------------------


def stop_leg(order_id: str, stop_price: int, qty: int = 2, *, side: Side = SELL) -> Place:
    return stop(order_id, "alice", side, STOP_LOSS, stop_price, qty)


def oco(list_id: str, user: str, first: Place, second: Place) -> PlaceList:
    return PlaceList(list_id, user, [first, second], 0)


def test_an_oco_sell_locks_once_and_its_limit_fill_expires_the_stop() -> None:
    h = Harness()
    at_100(h)
    h.deposit("alice", base=200)
    la = limit_maker("la", "alice", SELL, 110, 2)
    lb = stop_leg("lb", 95)
    # Both legs sell 2 lots: the list locks 200 ABC once; the limit leg holds it all.
    assert h.submit(oco("l1", "alice", la, lb)) == [
        stop_accepted(la, 200, list_id="l1"),
        stop_accepted(lb, 0, tif=IOC, list_id="l1"),
    ]
    assert h.balances()["alice"] == {"ABC": (0, 200)}
    assert h.book() == ([], [(110, 2)])
    # bob takes 1 of la: a partial fill is enough to expire the stop-loss leg.
    assert h.place("b1", "bob", BUY, 110, 1)[-2:] == [
        filled("b1", "bob", BUY, 1, 0),
        ended("lb", "alice", SELL, EXPIRED, REASON_OCO, 0),
    ]
    assert h.resting()["la"] == (1, 100, 1)
    assert not h.engine.siblings


def test_an_oco_buy_whose_stop_triggers_expires_the_limit_and_keeps_what_it_needs() -> None:
    h = Harness()
    at_100(h)
    h.deposit("alice", quote=30_000)
    la = limit_maker("la", "alice", BUY, 90, 2)
    lb = stop("lb", "alice", BUY, STOP_LOSS_LIMIT, 105, 2, 106)
    # The limit buy needs 90 * 2 * 100 = 18000, the stop-limit 106 * 2 * 100 = 21200: the
    # list locks 21200; the limit leg holds its 18000, the stop leg the other 3200.
    assert list_lock(EASY, [la, lb]) == 21_200
    assert h.submit(oco("l1", "alice", la, lb)) == [
        stop_accepted(la, 18_000, list_id="l1"),
        stop_accepted(lb, 3_200, list_id="l1"),
    ]
    h.place("s1", "carol", SELL, 105, 1)
    h.place("s2", "carol", SELL, 106, 5)
    # bob lifts 105: lb triggers. la expires giving back nothing (its 18000 moves to lb, which
    # now needs 21200); lb buys 2 @ 106 as a limit: 21200 spent.
    assert h.place("b1", "bob", BUY, 105, 1)[-4:] == [
        triggered("lb", "alice", BUY, 105, 105),
        ended("la", "alice", BUY, EXPIRED, REASON_OCO, 0),
        trade(3, 106, 2, 21_200, ("s2", "carol"), ("lb", "alice"), BUY, 22, 1),
        filled("lb", "alice", BUY, 2, 0),
    ]
    assert h.book() == ([], [(106, 3)])
    assert h.balances()["alice"] == {"ABC": (199, 0), "XYZ": (30_000 - 21_200, 0)}


def test_an_oco_buy_whose_limit_fills_first_gives_the_stop_share_back() -> None:
    h = Harness()
    at_100(h)
    h.deposit("alice", quote=30_000)
    la = limit_maker("la", "alice", BUY, 90, 2)
    lb = stop("lb", "alice", BUY, STOP_LOSS_LIMIT, 105, 2, 106)
    h.submit(oco("l1", "alice", la, lb))
    assert h.place("s1", "carol", SELL, 90, 2)[-3:] == [
        filled("la", "alice", BUY, 2, 0),
        filled("s1", "carol", SELL, 2, 0),
        ended("lb", "alice", BUY, EXPIRED, REASON_OCO, 3_200),
    ]
    assert h.balances()["alice"]["XYZ"] == (30_000 - 18_000, 0)


def test_an_oco_of_two_stops_take_profit_and_stop_loss() -> None:
    h = Harness()
    at_100(h)
    h.deposit("alice", base=200)
    tp = stop("tp", "alice", SELL, TAKE_PROFIT_LIMIT, 110, 2, 109)
    sl = stop_leg("sl", 90)
    assert h.submit(oco("l1", "alice", tp, sl)) == [
        stop_accepted(tp, 200, list_id="l1"),
        stop_accepted(sl, 0, tif=IOC, list_id="l1"),
    ]
    h.place("b1", "bob", BUY, 90, 1)
    events = h.place("s1", "carol", SELL, 90, 1)
    # sl triggers; tp expires (its 200 move to sl); sl sells 0 more: no bids are left.
    assert events[-3:] == [
        triggered("sl", "alice", SELL, 90, 90),
        ended("tp", "alice", SELL, EXPIRED, REASON_OCO, 0),
        expired("sl", "alice", SELL, REASON_TIME_IN_FORCE, 0, 200),
    ]


def test_canceling_either_leg_cancels_the_list() -> None:
    h = Harness()
    h.deposit("alice", base=200)
    h.submit(oco("l1", "alice", limit_maker("la", "alice", SELL, 110, 2), stop_leg("lb", 95)))
    assert h.cancel("lb", "alice") == [
        canceled("lb", "alice", SELL, 0, 0),
        canceled("la", "alice", SELL, 0, 200),
    ]
    assert h.book() == ([], [])
    assert h.balances()["alice"] == {"ABC": (200, 0)}


def list_refusal(legs: list[Place], code: ResultCode, unlocked: int) -> list[Any]:
    return [
        rejected(leg.order_id, "alice", leg.side, code, unlocked if n == 0 else 0, op="place_list")
        for n, leg in enumerate(legs)
    ]


@pytest.mark.parametrize(
    ("legs", "code"),
    [
        # the limit leg would take the bid at 100: post-only
        (
            [limit_maker("la", "alice", SELL, 100, 2), stop_leg("lb", 95)],
            ResultCode.POST_ONLY_WOULD_CROSS,
        ),
        # the stop leg is already reached
        (
            [limit_maker("la", "alice", SELL, 110, 2), stop_leg("lb", 100)],
            ResultCode.STOP_WOULD_TRIGGER,
        ),
        # two limit legs, different quantities, a plain GTC limit leg
        (
            [limit_maker("la", "alice", SELL, 110, 2), limit_maker("lb", "alice", SELL, 120, 2)],
            ResultCode.INVALID_ORDER_LIST,
        ),
        (
            [limit_maker("la", "alice", SELL, 110, 2), stop_leg("lb", 95, 1)],
            ResultCode.INVALID_ORDER_LIST,
        ),
        (
            [replace(limit_maker("la", "alice", SELL, 110, 2), tif=GTC), stop_leg("lb", 95)],
            ResultCode.INVALID_ORDER_LIST,
        ),
        (
            [limit_maker("la", "alice", SELL, 110, 2), stop_leg("la", 95)],
            ResultCode.INVALID_ORDER_LIST,
        ),
        (
            [limit_maker("la", "alice", SELL, 110, 2), replace(stop_leg("lb", 95), user="bob")],
            ResultCode.INVALID_ORDER_LIST,
        ),
        ([limit_maker("la", "alice", SELL, 110, 2)], ResultCode.INVALID_ORDER_LIST),
    ],
)
def test_a_refused_list_is_refused_leg_by_leg_and_unlocks_once(
    legs: list[Place], code: ResultCode
) -> None:
    h = Harness()
    at_100(h)
    h.place("b1", "bob", BUY, 100, 1)
    h.deposit("alice", base=200)
    events = h.submit(PlaceList("l1", "alice", legs, 0))
    locked = 200 if len(legs) == 2 else 0
    assert events == list_refusal(legs, code, locked)
    assert h.balances()["alice"] == {"ABC": (200, 0)}


def test_an_unfunded_list_is_refused() -> None:
    h = Harness()
    h.deposit("alice", base=100)
    legs = [limit_maker("la", "alice", SELL, 110, 2), stop_leg("lb", 95)]
    assert h.submit(oco("l1", "alice", *legs)) == list_refusal(
        legs, ResultCode.INSUFFICIENT_FUNDS, 0
    )


def test_an_engine_given_the_wrong_list_lock_refuses_it() -> None:
    engine = Engine(EASY)
    legs = [limit_maker("la", "alice", SELL, 110, 2), stop_leg("lb", 95)]
    engine.place_list(oco("l1", "alice", *legs), 300, "1", 0)
    assert [e.reason for e in engine.take_events()] == ["invalid_command", "invalid_command"]  # type: ignore[union-attr]
    engine.place_list(oco("l1", "alice", *legs), 100, "2", 0)
    assert [e.reason for e in engine.take_events()] == ["insufficient_funds"] * 2  # type: ignore[union-attr]


# ---- snapshots ------------------------------------------------------------------------------


def test_a_snapshot_keeps_stops_lists_and_the_last_price() -> None:
    """An engine restored from a snapshot triggers exactly as the one it was taken of."""
    h = Harness()
    at_100(h)
    h.deposit("alice", base=1_000, quote=100_000)
    h.submit(stop("x1", "alice", SELL, STOP_LOSS, 99, 1))
    h.submit(stop("x2", "alice", SELL, STOP_LOSS, 99, 1))
    h.submit(oco("l1", "alice", limit_maker("la", "alice", SELL, 110, 2), stop_leg("lb", 98)))
    h.place("b1", "bob", BUY, 99, 5)
    restored = load_engine(EASY, dump_engine(h.engine))
    assert state_hash(restored) == state_hash(h.engine)
    assert restored.last_price == 100 and restored.siblings == {"la": "lb", "lb": "la"}
    command = Place("s1", "carol", SELL, LIMIT, 99, 1, 0, GTC, DEFAULT_STP, 100)
    h.engine.place(command, "next", 0)
    restored.place(command, "next", 0)
    assert msgspec.json.encode(restored.take_events()) == msgspec.json.encode(
        h.engine.take_events()
    )
    assert state_hash(restored) == state_hash(h.engine)


def test_a_version_1_snapshot_without_stops_still_loads() -> None:
    engine = Engine(EASY)
    state = msgspec.msgpack.decode(dump_engine(engine))
    for key in ("last_price", "stops", "siblings"):
        del state[key]
    state["v"] = 1
    assert load_engine(EASY, msgspec.msgpack.encode(state)).last_price == 0


def test_a_limit_leg_expired_by_self_trade_prevention_ends_its_list() -> None:
    h = Harness()
    h.deposit("alice", base=200, quote=20_000)
    h.submit(oco("l1", "alice", limit_maker("la", "alice", SELL, 110, 2), stop_leg("lb", 95)))
    # alice's own buy at 110 meets her limit leg: EXPIRE_MAKER expires it, and so the list.
    assert h.place("b1", "alice", BUY, 110, 1) == [
        accepted("b1", "alice", BUY, 110, 1, 11_000),
        expired("la", "alice", SELL, "self_trade", 0, 200),
        ended("lb", "alice", SELL, EXPIRED, REASON_OCO, 0),
    ]
    assert h.book() == ([(110, 1)], [])
    assert not h.engine.siblings and not h.engine.stops.by_id
