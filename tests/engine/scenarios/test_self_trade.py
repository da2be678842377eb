"""Engine scenarios (see tests/engine/scenarios/common.py for the market and the harness).

Self-trade prevention: none, expire maker, expire taker, expire both.
"""

from tests.engine.scenarios.common import Harness, accepted, expired, filled, trade
from xch.schemas import (
    BUY,
    FEE_ACCOUNT,
    IOC,
    REASON_SELF_TRADE,
    SELL,
    STP_EXPIRE_BOTH,
    STP_EXPIRE_MAKER,
    STP_EXPIRE_TAKER,
    STP_NONE,
)


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
