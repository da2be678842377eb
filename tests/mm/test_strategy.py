"""The market maker's pure decisions: ladder, skew, bounds, estimators, requoting; and the
book's shape it reports."""

import math
from pathlib import Path

import yaml
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from mm.book import BookShape, book_shape
from mm.strategy import (
    SCALE,
    Estimator,
    Holdings,
    LiveOrder,
    Params,
    Plan,
    Quote,
    Touch,
    ladder,
    others_touch,
    place_before_cancel,
    requote,
    spread_bps,
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
    assert PARAMS.max_spread_bps == 60 and PARAMS.size_growth_pct == 100
    assert PARAMS.refresh_ms == 500
    assert [PARAMS.level_lots(n) for n in range(5)] == [100, 200, 300, 400, 500]


def test_older_manifests_keep_their_meaning() -> None:
    """Without the newer fields: equal sizes, the spread widens to 3x at most, and the
    interval of the maker's settings."""
    manifest = yaml.safe_load(EXAMPLE.read_text())
    for name in ("maxSpreadBps", "sizeGrowthPct", "refreshMs"):
        del manifest["spec"]["marketMaker"][name]
    params = Params.of(Market.model_validate(manifest))
    assert params.max_spread_bps == 60 and params.refresh_ms is None
    assert {params.level_lots(n) for n in range(5)} == {100}


def test_a_balanced_ladder_is_symmetric_around_the_fair_price() -> None:
    estimator = Estimator.starting_at(FAIR)
    bids, asks = sides(ladder(PARAMS, estimator, Holdings(base=10**8, quote=3 * 10**10)))
    assert len(bids) == len(asks) == 5
    assert [q.price for q in bids] == sorted((q.price for q in bids), reverse=True)
    assert [q.price for q in asks] == sorted(q.price for q in asks)
    assert bids[0].price == FAIR * (10_000 - 10) // 10_000  # half of 20 bps below
    assert asks[0].price == FAIR * (10_000 + 10) // 10_000
    assert bids[1].price == FAIR * (10_000 - 20) // 10_000  # one spacing further
    assert [q.lots for q in bids] == [q.lots for q in asks] == [100, 200, 300, 400, 500]


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
    poor = ladder(PARAMS, estimator, Holdings(base=4 * 10**6, quote=800 * 10**6))
    bids, asks = sides(poor)
    assert len(asks) == 2  # 0.04 BTC covers the asks of 0.01 and 0.02, not the third of 0.03
    assert len(bids) == 1  # 800 USD covers a bid of 0.01 BTC at ~30,000, not one more of 0.02


def test_volatility_widens_the_spread_up_to_the_cap() -> None:
    calm = Estimator.starting_at(FAIR)
    for _ in range(20):
        calm.observe([(FAIR, 1)])
    assert spread_bps(PARAMS, calm) == PARAMS.spread_bps
    moving = Estimator.starting_at(FAIR)
    for n in range(20):  # the price walks 3 bps a round
        moving.observe([(FAIR + (n + 1) * 900, 1)] * 20)
    assert PARAMS.spread_bps < spread_bps(PARAMS, moving) < PARAMS.max_spread_bps
    wild = Estimator.starting_at(FAIR)
    for n in range(20):  # 30 bps a round
        wild.observe([(FAIR + (n + 1) * 9_000, 1)] * 20)
    assert spread_bps(PARAMS, wild) == PARAMS.max_spread_bps


def test_trading_at_the_quotes_does_not_widen_the_spread_by_itself() -> None:
    """Takers alternately hitting the bid and lifting the ask (the bid-ask bounce) must not
    read as volatility that widens the spread, which would widen the bounce: a feedback
    loop."""
    estimator = Estimator.starting_at(FAIR)
    bid, ask = FAIR * 9_990 // 10_000, FAIR * 10_010 // 10_000
    for n in range(200):
        estimator.observe([(bid if n % 2 else ask, 10)])
    assert spread_bps(PARAMS, estimator) <= PARAMS.spread_bps + 3


def test_quotes_never_reach_the_best_price_of_others() -> None:
    estimator = Estimator.starting_at(FAIR)
    touch = Touch(bid=FAIR + 5, ask=FAIR + 10)  # someone bids above the fair price
    bids, asks = sides(ladder(PARAMS, estimator, RICH, touch))
    assert bids[0].price < FAIR + 10 and asks[0].price > FAIR + 5
    assert bids[0].price < asks[0].price


def test_the_touch_of_others_skips_the_makers_own_quotes() -> None:
    own = [LiveOrder("a", BUY, 100, 5), LiveOrder("b", SELL, 110, 5), LiveOrder("c", SELL, 111, 2)]
    touch = others_touch([(100, 5), (99, 1)], [(110, 7), (111, 2)], own)
    assert touch == Touch(bid=99, ask=110)  # someone else has 2 lots at 110
    assert others_touch([(100, 5)], [], own) == Touch()


def test_the_fair_price_follows_trades() -> None:
    estimator = Estimator.starting_at(FAIR)
    estimator.observe([(FAIR + 3_000, 1)] * 30)
    assert FAIR + 2_900 < estimator.fair_ticks <= FAIR + 3_000


@seed(26)
@settings(max_examples=300)
@given(
    fair=st.integers(1, 10**9),
    base=st.integers(0, 10**10),
    quote=st.integers(0, 10**14),
    rounds=st.lists(st.lists(st.integers(1, 10**9), max_size=5), max_size=20),
    touch_bid=st.none() | st.integers(1, 10**9),
    touch_gap=st.integers(1, 10**6),
)
def test_the_ladder_keeps_its_invariants(
    fair: int,
    base: int,
    quote: int,
    rounds: list[list[int]],
    touch_bid: int | None,
    touch_gap: int,
) -> None:
    """Bids below asks, no quote at or through the best price of others on the opposite
    side, within the balances and the inventory bound, the spread within its cap."""
    estimator = Estimator.starting_at(fair)
    for moves in rounds:
        estimator.observe((price, 1) for price in moves)
    assert spread_bps(PARAMS, estimator) <= PARAMS.max_spread_bps
    touch = Touch(touch_bid, touch_bid + touch_gap if touch_bid is not None else None)
    holdings = Holdings(base=base, quote=quote)
    bids, asks = sides(ladder(PARAMS, estimator, holdings, touch))
    if bids and asks:
        assert bids[0].price < asks[0].price
    assert [q.price for q in bids] == sorted({q.price for q in bids}, reverse=True)
    assert [q.price for q in asks] == sorted({q.price for q in asks})
    if touch.ask is not None:
        assert all(q.price < touch.ask for q in bids)
    if touch.bid is not None:
        assert all(q.price > touch.bid for q in asks)
    assert all(q.price >= 1 and q.lots >= PARAMS.order_lots for q in bids + asks)
    spent = sum(q.price * q.lots * PARAMS.quote_per_tick_lot for q in bids)
    assert spent <= quote
    assert sum(q.lots * PARAMS.base_per_lot for q in asks) <= base
    assert PARAMS.max_inventory is not None
    assert base + sum(q.lots * PARAMS.base_per_lot for q in bids) <= max(base, PARAMS.max_inventory)


@seed(26)
@given(variance=st.floats(0, 10**6), base=st.integers(0, 4 * 10**8))
def test_the_spread_is_the_configured_one_widened_by_risk_and_capped(
    variance: float, base: int
) -> None:
    estimator = Estimator(fair=FAIR * SCALE, variance_bps2=variance)
    bids, asks = sides(ladder(PARAMS, estimator, Holdings(base=base, quote=10**12)))
    expected = min(PARAMS.max_spread_bps, PARAMS.spread_bps + math.ceil(4 * math.sqrt(variance)))
    assert spread_bps(PARAMS, estimator) == expected
    if bids and asks:  # the skew moves both sides alike: the spread stays, up to rounding
        quoted = (asks[0].price - bids[0].price) * 10_000
        assert (expected - 1) * FAIR <= quoted <= (expected + 1) * FAIR


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


def test_the_book_shape_measures_spread_and_depth_around_the_mid() -> None:
    bids = [(9_990, 3), (9_960, 4), (9_900, 5), (9_800, 100)]  # ticks, lots
    asks = [(10_010, 2), (10_050, 6), (10_100, 7)]
    shape = book_shape(bids, asks)
    assert shape.spread_bps == 20.0  # 20 ticks around a mid of 10,000
    assert shape.bid_lots == {50: 7, 100: 12}  # 9,900 is exactly 1% below
    assert shape.ask_lots == {50: 8, 100: 15}
    assert book_shape(bids, []) == BookShape(None, {50: 0, 100: 0}, {50: 0, 100: 0})


def test_new_quotes_go_in_before_the_stale_ones_leave_when_free_funds_allow() -> None:
    live = [LiveOrder("b", BUY, 2_990_000, 100), LiveOrder("a", SELL, 3_010_000, 100)]
    plan = Plan(
        cancel=["b", "a"],
        place=[
            Quote(BUY, 2_995_000, 100),  # 299.50 USD
            Quote(BUY, 3_010_000, 100),  # would cross the maker's own live ask
            Quote(SELL, 3_005_000, 100),
            Quote(SELL, 3_006_000, 300),  # more base than is free
        ],
    )
    free = Holdings(base=3 * 10**6, quote=4_000 * 10**6)
    first = place_before_cancel(plan, live, RICH, free, PARAMS)
    assert first == [Quote(BUY, 2_995_000, 100), Quote(SELL, 3_005_000, 100)]
    poor = Holdings(base=0, quote=200 * 10**6)
    assert place_before_cancel(plan, live, RICH, poor, PARAMS) == []
    assert PARAMS.max_inventory is not None
    near_bound = Holdings(base=PARAMS.max_inventory - 15 * 10**5, quote=RICH.quote)
    assert Quote(BUY, 2_995_000, 100) not in place_before_cancel(
        plan, live, near_bound, free, PARAMS
    ), "0.01 BTC live and 0.01 BTC more bid would pass the bound with 0.015 BTC left"
