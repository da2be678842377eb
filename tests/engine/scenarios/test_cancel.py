"""Engine scenarios (see tests/engine/scenarios/common.py for the market and the harness).

Cancel and cancel-all: what they unlock and what they refuse.
"""

from tests.engine.scenarios.common import Harness, canceled, rejected
from xch.schemas import BUY, IOC, SELL, ResultCode


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
    assert h.cancel("s1", "bob") == [
        rejected("s1", "bob", "", ResultCode.UNKNOWN_ORDER, op="cancel")
    ]
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
