"""Engine scenarios (see tests/engine/scenarios/common.py for the market and the harness).

Regressions: the peer bugs from the issue, and bugs these scenarios found.
"""

from typing import Any

import pytest

from engine.snapshot import state_hash
from tests.engine.scenarios.common import Harness, M, accepted, canceled, filled, rejected, trade
from xch.schemas import BUY, IOC, MARKET, SELL, Funds, OrderRejected, ResultCode

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
        rejected("s1", "bob", "", ResultCode.UNKNOWN_ORDER, op="cancel"),
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
