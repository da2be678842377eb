"""Price levels of one side of an order book: price-time priority over integer ticks.

Each level is a FIFO of orders. Cancels are lazy: a canceled order is marked empty and left
in its level's queue until matching reaches it, so a cancel is O(1); the level's `total` and
`live` counts always reflect only live orders, and an empty level is removed at once.
"""

from collections import deque
from collections.abc import Iterator
from itertools import islice

from sortedcontainers import SortedList

from xch.schemas import Side


class Order:
    """A resting order. `remaining` is in lots; `locked` is what it still holds, in minor
    units of the asset it spends (quote for a buy, base for a sell)."""

    __slots__ = ("filled", "locked", "order_id", "price", "remaining", "side", "user")

    def __init__(
        self,
        order_id: str,
        user: str,
        side: Side,
        price: int,
        remaining: int,
        locked: int,
        filled: int,
    ) -> None:
        self.order_id = order_id
        self.user = user
        self.side = side
        self.price = price
        self.remaining = remaining
        self.locked = locked
        self.filled = filled

    def __repr__(self) -> str:
        return (
            f"Order({self.order_id!r}, {self.user!r}, {self.side}, price={self.price}, "
            f"remaining={self.remaining}, locked={self.locked}, filled={self.filled})"
        )


class Level:
    __slots__ = ("live", "orders", "total")

    def __init__(self) -> None:
        self.orders: deque[Order] = deque()
        self.total = 0
        self.live = 0


class BookSide:
    """One side of the book. Bids are kept under negated keys so that, on both sides,
    index 0 of the sorted key list is the best price."""

    __slots__ = ("best", "keys", "levels", "sign")

    def __init__(self, is_bid: bool) -> None:
        self.sign = -1 if is_bid else 1
        self.keys = SortedList()
        self.levels: dict[int, Level] = {}
        self.best: int | None = None

    def add(self, order: Order) -> None:
        price = order.price
        level = self.levels.get(price)
        if level is None:
            level = self.levels[price] = Level()
            self.keys.add(price * self.sign)
            best = self.best
            if best is None or (price - best) * self.sign < 0:
                self.best = price
        level.orders.append(order)
        level.total += order.remaining
        level.live += 1

    def remove_level(self, price: int) -> None:
        del self.levels[price]
        keys = self.keys
        keys.remove(price * self.sign)
        if price == self.best:
            self.best = keys[0] * self.sign if keys else None

    def withdraw(self, order: Order) -> None:
        """Take a live order out (cancel or expiry): O(1), the queue entry goes lazily."""
        level = self.levels[order.price]
        level.total -= order.remaining
        level.live -= 1
        order.remaining = 0
        if level.live == 0:
            self.remove_level(order.price)

    def prices(self) -> Iterator[int]:
        """Prices from best to worst."""
        sign = self.sign
        for key in self.keys:
            yield key * sign

    def totals(self) -> Iterator[tuple[int, int]]:
        """(price, total lots) from best to worst."""
        levels = self.levels
        for price in self.prices():
            yield price, levels[price].total

    def depth(self, limit: int | None = None) -> list[tuple[int, int]]:
        """[(price, total lots)] from best to worst."""
        return list(islice(self.totals(), limit))

    def live_orders(self, price: int) -> Iterator[Order]:
        """The live orders of one level in time priority."""
        for order in self.levels[price].orders:
            if order.remaining:
                yield order
