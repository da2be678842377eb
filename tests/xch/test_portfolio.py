"""xch.portfolio: average cost and P&L from fills, checked against a hand computation, and the
reconciliation with cash flows as a property."""

from hypothesis import given
from hypothesis import strategies as st

from xch.portfolio import (
    Fill,
    HistoryPoint,
    MarketInfo,
    Position,
    Rate,
    fold,
    history,
    share,
    value,
    view,
)

# BTC-USD as in examples/markets: BTC has 8 decimals, USD 6. Amounts below are minor units:
# 1 BTC = 100_000_000, 1 USD = 1_000_000.
BTC_USD = MarketInfo("btc-usd", "BTC", "USD", 8, 6)

FILLS = [
    # 1. Buy 1 BTC at 30000 as taker (fee 20 bps = 0.002 BTC, in base):
    #    receives 1 - 0.002 = 0.998 BTC, pays 30000 USD.
    #    position 99_800_000, cost 30_000_000_000; average 30000 / 0.998 = 30060.120240...
    Fill(1, "buy", 100_000_000, 30_000_000_000, 200_000),
    # 2. Buy 0.5 BTC at 32000 as maker (fee 10 bps = 0.0005 BTC): receives 0.4995 BTC, pays
    #    16000 USD. position 149_750_000, cost 46_000_000_000; average 46000 / 1.4975
    #    = 30717.863105175...
    Fill(2, "buy", 50_000_000, 16_000_000_000, 50_000),
    # 3. Sell 0.5 BTC at 33000 as taker (fee 20 bps of 16500 = 33 USD, in quote): proceeds
    #    16467 USD. A partial close of 50_000_000 of 149_750_000: cost removed
    #    46_000_000_000 * 50_000_000 / 149_750_000 = 15_358_931_552.58... → 15_358_931_552
    #    (truncated), realized 16_467_000_000 - 15_358_931_552 = 1_108_068_448;
    #    cost 30_641_068_448 for 99_750_000 left: the average stays 30717.863105.
    Fill(3, "sell", 50_000_000, 16_500_000_000, 33_000_000),
    # 4. Sell 1 BTC at 29000 as maker (fee 29 USD): proceeds 28971 USD, of which
    #    28971 * 0.9975 = 28_898_572_500 for the 99_750_000 held (cost 30_641_068_448:
    #    realized -1_742_495_948, total -634_427_500), and 72_427_500 open a short of
    #    0.0025 BTC: position -250_000, cost -72_427_500 (average 28971).
    Fill(4, "sell", 100_000_000, 29_000_000_000, 29_000_000),
    # 5. Buy 0.0025 BTC at 28000 as taker (fee 0.000005 BTC = 500): receives 249_500 and pays
    #    70 USD, all of it closing 249_500 of the 250_000 short: cost removed
    #    -72_427_500 * 249_500 / 250_000 = -72_282_645 (exact), realized
    #    -70_000_000 + 72_282_645 = 2_282_645 (total -632_144_855); position -500, cost
    #    -144_855.
    Fill(5, "buy", 250_000, 70_000_000, 500),
]


def test_hand_computed_sequence_with_fees_and_partial_closes() -> None:
    position = Position()
    expected = [
        # (qty, cost, realized, average cost in USD minor units per BTC)
        (99_800_000, 30_000_000_000, 0, 30_060_120_240),
        (149_750_000, 46_000_000_000, 0, 30_717_863_105),
        (99_750_000, 30_641_068_448, 1_108_068_448, 30_717_863_105),
        (-250_000, -72_427_500, -634_427_500, 28_971_000_000),
        (-500, -144_855, -632_144_855, 28_971_000_000),
    ]
    for fill, (qty, cost, realized, average) in zip(FILLS, expected, strict=True):
        position.apply(fill)
        assert (position.qty, position.cost, position.realized) == (qty, cost, realized)
        assert position.average_cost(8) == average
    assert (position.fees_base, position.fees_quote) == (250_500, 62_000_000)
    assert (position.fills, position.last_trade_id) == (5, 5)
    # Cash: -30000 - 16000 + 16467 + 28971 - 70 = -632 USD; realized = cash + cost basis.
    assert position.realized == -632_000_000 + position.cost
    # At 28500: the -0.000005 BTC are worth -0.1425 USD = -142_500; unrealized
    # -142_500 - (-144_855) = 2_355.
    assert value(-500, "28500.00", 8, 6) == -142_500
    assert position.unrealized("28500.00", 8, 6) == 2_355


def test_closing_the_whole_position_leaves_no_cost() -> None:
    # Buy 3 lots for 10 (fee 0), sell 1 then 2: 10/3 does not divide, the last close takes
    # the remainder: realized (5 - 3) + (12 - 7) = 7 = cash flow -10 + 5 + 12.
    position = fold([Fill(1, "buy", 3, 10, 0), Fill(2, "sell", 1, 5, 0), Fill(3, "sell", 2, 12, 0)])
    assert (position.qty, position.cost, position.realized) == (0, 0, 7)
    assert position.average_cost(8) is None


def test_share_and_value_round_as_documented() -> None:
    assert share(10, 1, 3) == 3 and share(-10, 1, 3) == -3  # toward zero
    assert value(1, "0.5", 0, 0) == 0 and value(-1, "0.5", 0, 0) == -1  # down
    assert value(12_345, "30000.01", 8, 6) == 3_703_501  # 0.00012345 * 30000.01 = 3.7035012...


def test_view_renders_decimal_strings() -> None:
    position = fold(FILLS)
    balances = {"BTC": (150_000_000, 50_000_000), "USD": (1_000_000, 0), "XYZ": (1, 0)}
    result = view({"btc-usd": BTC_USD}, {"btc-usd": position}, balances, {"btc-usd": "28500.00"})
    assert result["balances"] == [
        {
            "asset": "BTC",
            "free": "1.50000000",
            "locked": "0.50000000",
            "total": "2.00000000",
            "values": {"USD": "57000.000000"},
        },
        {
            "asset": "USD",
            "free": "1.000000",
            "locked": "0.000000",
            "total": "1.000000",
            "values": {"USD": "1.000000"},
        },
    ]
    assert result["positions"] == [
        {
            "market": "btc-usd",
            "base": "BTC",
            "quote": "USD",
            "position": "-0.00000500",
            "cost_basis": "-0.144855",
            "average_cost": "28971.000000",
            "realized_pnl": "-632.144855",
            "unrealized_pnl": "0.002355",
            "last_price": "28500.00",
            "fees_base": "0.00250500",
            "fees_quote": "62.000000",
            "fills": 5,
        }
    ]
    assert result["totals"] == [
        {
            "asset": "USD",
            "value": "57001.000000",
            "realized_pnl": "-632.144855",
            "unrealized_pnl": "0.002355",
        }
    ]
    # Without a last price there is no unrealized P&L and no valuation of the base.
    unpriced = view({"btc-usd": BTC_USD}, {"btc-usd": position}, balances, {})
    assert unpriced["positions"][0]["unrealized_pnl"] is None
    assert unpriced["balances"][0]["values"] == {}


fills = st.builds(
    lambda trade_id, side, qty, price, fee_bps: Fill(
        trade_id,
        side,
        qty,
        qty * price,
        (qty if side == "buy" else qty * price) * fee_bps // 10_000,
    ),
    st.integers(1, 10**6),
    st.sampled_from(["buy", "sell"]),
    st.integers(1, 10**6),
    st.integers(1, 10**6),
    st.integers(0, 100),
)


@given(st.lists(fills, max_size=40), st.integers(0, 10**7))
def test_pnl_reconciles_with_cash_flows(sequence: list[Fill], price: int) -> None:
    position = fold(sequence)
    base = sum(fill.base_flow for fill in sequence)
    cash = sum(fill.quote_flow for fill in sequence)
    assert position.qty == base
    assert position.realized == cash + position.cost
    assert position.unrealized(str(price), 0, 0) + position.realized == cash + base * price
    if position.qty == 0 and all(f.base_flow for f in sequence):
        assert position.cost == 0


@given(st.integers(1, 10**9), st.integers(1, 10**9), st.integers(1, 10**6))
def test_a_partial_close_keeps_the_average(qty: int, cost: int, part: int) -> None:
    position = fold([Fill(1, "buy", qty, cost, 0)])
    before = position.average_cost(8)
    position.apply(Fill(2, "sell", min(part, qty), 1, 0))
    after = position.average_cost(8)
    if position.qty:
        assert before is not None and after is not None
        # Only the truncated cent of the split moves it, by less than one unit per held unit.
        assert abs(after - before) * position.qty <= 10**8


def test_history_values_balances_at_each_close() -> None:
    # Opening: 1000 USD and 0.1 BTC; BTC at 30000 when the window opens (0.1 BTC = 3000 USD).
    # Bucket 0 (close 31000): buys 0.1 BTC for 3000 USD (+ fees ignored here): value
    #   (1000 - 3000 = -2000) + 0.2 * 31000 = 4200; P&L 4200 - 4000 = 200.
    # Bucket 1 (no trade, price carried: 31000): deposits 500 USD: value 4700, transfers 500,
    #   P&L 200.
    # Bucket 2 (close 29000): value -1500 + 0.2 * 29000 = 4300; P&L 4300 - 4000 - 500 = -200.
    # ETH is held but has no price: worth nothing, reported.
    usd, btc = 1_000_000, 100_000_000
    rate = {p: Rate(p, 8, 6) for p in ("30000.00", "31000.00", "29000.00")}
    points, unpriced = history(
        [0, 60_000, 120_000],
        {"USD": 1000 * usd, "BTC": btc // 10, "ETH": 5},
        {
            0: {"USD": (-3000 * usd, 0), "BTC": (btc // 10, 0)},
            1: {"USD": (500 * usd, 500 * usd)},
        },
        {
            "BTC": [rate["30000.00"], rate["31000.00"], rate["31000.00"], rate["29000.00"]],
            "ETH": [None, None, None, None],
        },
        "USD",
    )
    assert points == [
        HistoryPoint(0, 4200 * usd, 0, 200 * usd),
        HistoryPoint(60_000, 4700 * usd, 500 * usd, 200 * usd),
        HistoryPoint(120_000, 4300 * usd, 500 * usd, -200 * usd),
    ]
    assert unpriced == {"ETH"}
