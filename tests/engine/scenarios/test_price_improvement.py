"""Engine scenarios (see tests/engine/scenarios/common.py for the market and the harness).

Price improvement: the buyer's lock beyond the trade price comes back.
"""

from tests.engine.scenarios.common import Harness, accepted, filled, trade
from xch.schemas import BUY, SELL


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
