"""The shape of an order book, as a trader sees it: spread and depth near the mid. Integers
in (ticks, lots); the spread in bps is a float, for gauges and reports only."""

from collections.abc import Sequence
from dataclasses import dataclass

from xch.money import BPS

Levels = Sequence[tuple[int, int]]
"""A side of the book: (price ticks, lots), best first."""
BANDS_BPS = (50, 100)
"""Depth is measured within 0.5% and 1% of the mid."""


@dataclass(frozen=True)
class BookShape:
    spread_bps: float | None
    """Best ask over best bid, in bps of the mid (None: a side is empty)."""
    bid_lots: dict[int, int]
    """Lots bid within each band (bps of the mid) below the mid."""
    ask_lots: dict[int, int]


def book_shape(
    bids: Sequence[tuple[int, int]],
    asks: Sequence[tuple[int, int]],
    bands: Sequence[int] = BANDS_BPS,
) -> BookShape:
    """`bids` and `asks` are (price ticks, lots), best first."""
    if not bids or not asks:
        empty = dict.fromkeys(bands, 0)
        return BookShape(None, empty, dict(empty))
    twice_mid = bids[0][0] + asks[0][0]
    spread = (asks[0][0] - bids[0][0]) * 2 * BPS / twice_mid

    def within(levels: Levels, band: int) -> int:
        # |price - mid| <= band x mid, in integers: |2 price - 2 mid| x BPS <= band x 2 mid
        return sum(
            lots for price, lots in levels if abs(2 * price - twice_mid) * BPS <= band * twice_mid
        )

    return BookShape(
        spread,
        {band: within(bids, band) for band in bands},
        {band: within(asks, band) for band in bands},
    )
