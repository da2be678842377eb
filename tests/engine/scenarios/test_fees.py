"""Engine scenarios (see tests/engine/scenarios/common.py for the market and the harness).

Fees: rounded up, maker and taker rates, a zero-fee market, btc-usd's rounding.
"""

from engine.replay import event_json
from tests.engine.scenarios.common import (
    BTC_USD,
    Harness,
    accepted,
    filled,
    make_rules,
    norm,
    trade,
)
from xch.schemas import BUY, FEE_ACCOUNT, IOC, MARKET, SELL, Funds


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
