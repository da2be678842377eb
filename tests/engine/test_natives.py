"""What the compiled core reads in place of interpreted names and arithmetic (ledger/natives.py,
the fee and heap-key helpers) says the same as the originals."""

import pytest

from engine.book import BookSide
from engine.core import _fee
from ledger import natives
from xch import schemas
from xch.money import BPS


def test_the_statics_are_the_schema_s_classes_sets_and_reasons() -> None:
    assert natives.TRADE is schemas.Trade and natives.PLACE is schemas.Place
    assert natives.ORDER_DONE is schemas.OrderDone and natives.CANCEL is schemas.Cancel
    assert frozenset(schemas.SIDES) == natives.SIDES
    assert frozenset(schemas.STP_MODES) == natives.STP_MODES
    assert frozenset(schemas.TIMES_IN_FORCE) == natives.TIMES_IN_FORCE
    assert frozenset(schemas.STOP_TYPES) == natives.STOP_TYPES
    assert frozenset(schemas.STOP_LIMIT_TYPES) == natives.STOP_LIMIT_TYPES
    assert {code: code.reason for code in schemas.ResultCode} == natives.REASONS


@pytest.mark.parametrize("bps", [-25, -1, 0, 1, 10, 20, 9_999, 10_000])
def test_a_fee_is_the_received_amount_s_share_rounded_up(bps: int) -> None:
    for received in [0, 1, 2, 499, 500, 501, 9_999, 10_000, 10_001, 10**15 + 7]:
        assert _fee(received, bps) == -(-received * bps // BPS)


@pytest.mark.parametrize("is_bid", [True, False])
def test_heap_keys_order_the_best_price_first(is_bid: bool) -> None:
    side = BookSide(is_bid)
    prices = [99, 100, 101]
    best = max(prices) if is_bid else min(prices)
    assert side.key(min(side.key(price) for price in prices)) == best
    assert all(side.key(side.key(price)) == price for price in prices)
    worse = [price for price in prices if side.beyond(price, 100)]
    assert worse == ([99] if is_bid else [101])
