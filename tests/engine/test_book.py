"""One side of the book (engine/book.py): the heap of level keys with parked empty levels always
gives the best live price, every key once, and no more parked levels than the slack allows."""

import random

import pytest

from engine.book import PARKED_SLACK, BookSide, Order
from xch.schemas import BUY, SELL


def check_side(side: BookSide) -> None:
    live = sorted(side.levels, reverse=side.sign < 0)
    assert list(side.prices()) == live
    assert side.best == (live[0] if live else None)
    assert not side.levels.keys() & side.parked.keys()
    assert sorted(side.heap) == sorted(price * side.sign for price in [*side.levels, *side.parked])
    assert len(side.parked) <= len(side.levels) + PARKED_SLACK
    assert all(level.live for level in side.levels.values())
    assert all(not level.orders and not level.live for level in side.parked.values())


@pytest.mark.parametrize("is_bid", [True, False])
def test_random_adds_and_withdrawals_keep_the_best_and_the_heap_exact(is_bid: bool) -> None:
    rng = random.Random(7)
    side = BookSide(is_bid)
    resting: list[Order] = []
    for n in range(5_000):
        if resting and rng.random() < 0.5:
            side.withdraw(resting.pop(rng.randrange(len(resting))))
        else:
            price = rng.randint(1, 300)
            order = Order(f"o{n}", "u", BUY if is_bid else SELL, price, rng.randint(1, 9), 0, 0)
            side.add(order)
            resting.append(order)
        check_side(side)


def test_a_level_emptied_below_the_best_is_parked_and_reused() -> None:
    asks = BookSide(is_bid=False)
    best, deeper = Order("a", "u", SELL, 100, 1, 0, 0), Order("b", "u", SELL, 105, 1, 0, 0)
    asks.add(best)
    asks.add(deeper)
    asks.withdraw(deeper)
    parked = asks.parked[105]
    assert asks.best == 100 and 105 not in asks.levels
    asks.add(Order("c", "u", SELL, 105, 2, 0, 0))
    assert asks.levels[105] is parked and asks.levels[105].total == 2
    assert sorted(asks.heap) == [100, 105]
    asks.withdraw(best)
    assert asks.best == 105 and asks.depth() == [(105, 2)]


def test_parked_levels_beyond_the_slack_are_forgotten() -> None:
    bids = BookSide(is_bid=True)
    orders = [Order(f"o{n}", "u", BUY, 1_000 - n, 1, 0, 0) for n in range(PARKED_SLACK + 10)]
    for order in orders:
        bids.add(order)
    for order in orders[1:]:
        bids.withdraw(order)
        check_side(bids)
    assert bids.best == 1_000 and bids.depth() == [(1_000, 1)]
    assert bids.depth(limit=0) == [] and list(bids) == [(1_000, 1)]
