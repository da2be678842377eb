"""Engine scenarios (see tests/engine/scenarios/common.py for the market and the harness).

Order types: limit GTC, IOC, FOK, post-only, market by quantity and by quote quantity.
"""

from ledger.locks import cost_to_buy
from tests.engine.scenarios.common import (
    BTC_USD,
    EASY,
    Harness,
    accepted,
    expired,
    filled,
    rejected,
    trade,
)
from xch.schemas import (
    BUY,
    FEE_ACCOUNT,
    FOK,
    IOC,
    MARKET,
    POST_ONLY,
    REASON_SELF_TRADE,
    REASON_TIME_IN_FORCE,
    SELL,
    STP_EXPIRE_MAKER,
    STP_EXPIRE_TAKER,
    ResultCode,
)


def test_the_easy_market_has_easy_numbers() -> None:
    assert (EASY.base_per_lot, EASY.quote_per_tick_lot, EASY.min_notional) == (100, 100, 0)
    assert (EASY.maker_bps, EASY.taker_bps) == (10, 20)
    assert (BTC_USD.base_per_lot, BTC_USD.quote_per_tick_lot) == (10_000, 1)
    assert BTC_USD.min_notional == 1_000_000


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
