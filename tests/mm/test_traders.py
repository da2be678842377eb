"""The taker simulator's flow (mm/traders.py): a random-walk reference price of the configured
volatility, heavy-tailed sizes, sides that pull the book towards the reference, resting limit
orders that do rest. All seeded."""

import itertools
import math
import random
import statistics

from hypothesis import given, seed
from hypothesis import strategies as st

from mm.traders import Flow, Reference, buy_probability, order_size, resting_price


def test_the_reference_price_walks_with_the_configured_volatility() -> None:
    rng = random.Random(26)
    reference = Reference(3_000_000.0, 0.0)
    prices = [reference.advance(rng, second, volatility_bps=2.0) for second in range(1, 5001)]
    moves_bps = [math.log(b / a) * 10_000 for a, b in itertools.pairwise(prices)]
    assert 1.9 < statistics.stdev(moves_bps) < 2.1
    assert abs(statistics.mean(moves_bps)) < 0.1


def test_sizes_are_heavy_tailed_and_bounded() -> None:
    rng = random.Random(26)
    flow = Flow(size_lots=5, max_size_lots=400)
    sizes = [order_size(rng, flow) for _ in range(20_000)]
    assert min(sizes) == 5 and max(sizes) == 400
    assert statistics.median(sizes) < 10  # most orders are small...
    assert sum(size >= 50 for size in sizes) > 200  # ...and a few percent are ten times that


def test_the_flow_buys_below_the_reference_and_sells_above() -> None:
    assert buy_probability(100.0, 100.0) == 0.5
    assert buy_probability(99.8, 100.0) > 0.85  # mid 20 bps below the reference
    assert buy_probability(100.2, 100.0) < 0.15


@seed(26)
@given(
    side=st.sampled_from(["buy", "sell"]),
    reference=st.floats(1, 1e9),
    best_bid=st.integers(1, 10**9),
    gap=st.integers(1, 10**4),
    draw=st.integers(0, 2**32),
)
def test_resting_orders_never_cross_the_book(
    side: str, reference: float, best_bid: int, gap: int, draw: int
) -> None:
    best_ask = best_bid + gap
    price = resting_price(random.Random(draw), side, reference, best_bid, best_ask)
    assert price >= 1
    if side == "buy":
        assert price < best_ask and price <= reference
    else:
        assert price > best_bid and price >= reference
