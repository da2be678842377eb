"""Engine scenarios (see tests/engine/scenarios/common.py for the market and the harness).

Priority: best price first, then time; a partial fill keeps its place.
"""

from tests.engine.scenarios.common import Harness, accepted, filled, trade
from xch.schemas import BUY, FEE_ACCOUNT, IOC, SELL


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
