"""The market maker's pure decisions: ladder, skew, bounds, estimators, requoting."""

from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from mm.strategy import (
    Estimator,
    Holdings,
    LiveOrder,
    Params,
    Quote,
    half_spread_bps,
    ladder,
    requote,
)
from xch.market import Market
from xch.schemas import BUY, SELL

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "markets" / "btc-usd.yaml"
MARKET = Market.model_validate(yaml.safe_load(EXAMPLE.read_text()))
PARAMS = Params.of(MARKET)
FAIR = 3_000_000  # 30000.00 in ticks of 0.01
RICH = Holdings(base=10**8, quote=30_000 * 10**6)  # 1 BTC and 30,000 USD: balanced at FAIR


def sides(quotes: list[Quote]) -> tuple[list[Quote], list[Quote]]:
    return [q for q in quotes if q.side == BUY], [q for q in quotes if q.side == SELL]


def test_params_come_from_the_market_spec() -> None:
    assert PARAMS.levels == 5 and PARAMS.spread_bps == 20 and PARAMS.spacing_bps == 10
    assert PARAMS.order_lots == 100  # 0.0100 BTC in lots of 0.0001
    assert PARAMS.max_inventory == 2 * 10**8
    assert PARAMS.reference_ticks == FAIR


def test_a_balanced_ladder_is_symmetric_around_the_fair_price() -> None:
    estimator = Estimator.starting_at(FAIR)
    bids, asks = sides(ladder(PARAMS, estimator, Holdings(base=10**8, quote=3 * 10**10)))
    assert len(bids) == len(asks) == 5
    assert [q.price for q in bids] == sorted((q.price for q in bids), reverse=True)
    assert [q.price for q in asks] == sorted(q.price for q in asks)
    assert bids[0].price == FAIR * (10_000 - 10) // 10_000  # half of 20 bps below
    assert asks[0].price == FAIR * (10_000 + 10) // 10_000
    assert bids[1].price == FAIR * (10_000 - 20) // 10_000  # one spacing further
    assert all(q.lots == PARAMS.order_lots for q in bids + asks)


def test_inventory_skews_both_sides_against_it() -> None:
    estimator = Estimator.starting_at(FAIR)
    neutral = ladder(PARAMS, estimator, Holdings(base=10**8, quote=3 * 10**10))
    heavy = ladder(PARAMS, estimator, Holdings(base=19 * 10**7, quote=3 * 10**10))
    light = ladder(PARAMS, estimator, Holdings(base=10**7, quote=3 * 10**10))
    best = {name: (sides(q)[0][0].price, sides(q)[1][0].price) for name, q in
            (("neutral", neutral), ("heavy", heavy), ("light", light))}  # fmt: skip
    assert best["heavy"][0] < best["neutral"][0] and best["heavy"][1] < best["neutral"][1]
    assert best["light"][0] > best["neutral"][0] and best["light"][1] > best["neutral"][1]


def test_the_inventory_bound_and_the_balances_trim_the_ladder() -> None:
    estimator = Estimator.starting_at(FAIR)
    full = ladder(PARAMS, estimator, Holdings(base=2 * 10**8, quote=3 * 10**10))
    assert sides(full)[0] == [], "no bids at the inventory bound"
    poor = ladder(PARAMS, estimator, Holdings(base=2 * 10**6, quote=600 * 10**6))
    bids, asks = sides(poor)
    assert len(asks) == 2  # 0.02 BTC covers two asks of 0.01
    assert len(bids) == 1  # 600 USD covers one bid of 0.01 BTC at ~30,000


def test_volatility_and_flow_widen_the_spread() -> None:
    calm = Estimator.starting_at(FAIR)
    calm.observe([(FAIR, 1)] * 20)
    wild = Estimator.starting_at(FAIR)
    wild.observe([(FAIR + (300 if n % 2 else -300), 1) for n in range(20)])
    busy = Estimator.starting_at(FAIR)
    for _ in range(10):
        busy.observe([(FAIR, 5_000)])
    base = half_spread_bps(PARAMS, calm, PARAMS.order_lots)
    assert half_spread_bps(PARAMS, wild, PARAMS.order_lots) > base
    assert half_spread_bps(PARAMS, busy, PARAMS.order_lots) > base


def test_the_fair_price_follows_trades() -> None:
    estimator = Estimator.starting_at(FAIR)
    estimator.observe([(FAIR + 3_000, 1)] * 30)
    assert FAIR + 2_900 < estimator.fair_ticks <= FAIR + 3_000


@given(
    fair=st.integers(1, 10**9),
    base=st.integers(0, 10**10),
    quote=st.integers(0, 10**14),
    moves=st.lists(st.integers(1, 10**9), max_size=20),
)
def test_the_ladder_never_crosses_itself_nor_exceeds_holdings(
    fair: int, base: int, quote: int, moves: list[int]
) -> None:
    estimator = Estimator.starting_at(fair)
    estimator.observe((price, 1) for price in moves)
    holdings = Holdings(base=base, quote=quote)
    bids, asks = sides(ladder(PARAMS, estimator, holdings))
    if bids and asks:
        assert bids[0].price < asks[0].price
    assert all(q.price >= 1 for q in bids + asks)
    spent = sum(q.price * q.lots * PARAMS.quote_per_tick_lot for q in bids)
    assert spent <= quote
    assert sum(q.lots * PARAMS.base_per_lot for q in asks) <= base
    assert PARAMS.max_inventory is not None
    assert base + sum(q.lots * PARAMS.base_per_lot for q in bids) <= max(base, PARAMS.max_inventory)


def test_requote_keeps_close_orders_and_replaces_drifted_ones() -> None:
    desired = [Quote(BUY, 2_997_000, 100), Quote(SELL, 3_003_000, 100)]
    live = [
        LiveOrder("a", BUY, 2_997_300, 100),  # 1 bp away: kept at a 5 bp threshold
        LiveOrder("b", SELL, 3_010_000, 100),  # 23 bp away: replaced
        LiveOrder("c", SELL, 3_020_000, 100),  # not wanted at all
    ]
    plan = requote(live, desired, threshold_bps=5)
    assert sorted(plan.cancel) == ["b", "c"]
    assert plan.place == [Quote(SELL, 3_003_000, 100)]
    assert requote(
        [LiveOrder("a", BUY, 2_997_000, 100), LiveOrder("d", SELL, 3_003_000, 100)], desired, 5
    ) == type(plan)(cancel=[], place=[])
