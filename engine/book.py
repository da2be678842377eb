"""Price levels of one side of an order book: price-time priority over integer ticks.

Each level is a FIFO of its live orders, linked through the orders themselves (intrusive,
doubly linked): appending, taking the oldest and taking out any order (a cancel) are O(1)
and create no objects; an empty level leaves `levels` at once.

The best price comes from a binary heap of level keys (`heapq`, in C), not a sorted container:
prices come and go at the same few ticks, and a level that empties away from the top of the
heap keeps its key there, parked, for the next order at its price to reuse; keys of empty
levels are dropped only when they reach the top, or all at once when they outnumber the live
ones. Ordered walks (depth, a market buy's cost) sort the live levels when asked.
"""

from collections.abc import Iterator
from heapq import heapify, heappop, heappush, nsmallest
from typing import Final

from xch.schemas import Side

PARKED_SLACK: Final = 64
"""Empty levels kept beyond as many as there are live ones, before the heap is rebuilt."""


class Order:
    """A resting order. `remaining` is in lots; `locked` is what it still holds, in minor
    units of the asset it spends (quote for a buy, base for a sell). `older` and `newer` are
    its neighbours in its level's queue while it rests."""

    __slots__ = (
        "filled",
        "locked",
        "newer",
        "older",
        "order_id",
        "price",
        "remaining",
        "side",
        "user",
    )

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
        self.older: Order | None = None
        self.newer: Order | None = None

    def __repr__(self) -> str:
        return (
            f"Order({self.order_id!r}, {self.user!r}, {self.side}, price={self.price}, "
            f"remaining={self.remaining}, locked={self.locked}, filled={self.filled})"
        )


class Level:
    """The live orders at one price, oldest first, and their count and total lots."""

    __slots__ = ("live", "newest", "oldest", "total")

    def __init__(self) -> None:
        self.oldest: Order | None = None
        self.newest: Order | None = None
        self.total = 0
        self.live = 0

    def append(self, order: Order) -> None:
        newest = self.newest
        order.older = newest
        if newest is None:
            self.oldest = order
        else:
            newest.newer = order
        self.newest = order
        self.total += order.remaining
        self.live += 1

    def remove(self, order: Order) -> None:
        """Unlink `order` from the queue and count it out; its lots are the caller's to take
        off `total` (matching takes them trade by trade)."""
        older, newer = order.older, order.newer
        if older is None:
            self.oldest = newer
        else:
            older.newer = newer
        if newer is None:
            self.newest = older
        else:
            newer.older = older
        order.older = order.newer = None
        self.live -= 1

    @property
    def orders(self) -> list[Order]:
        """The queue, oldest first."""
        queue = []
        order = self.oldest
        while order is not None:
            queue.append(order)
            order = order.newer
        return queue


class BookSide:
    """One side of the book. Bids are keyed by negated price so that, on both sides, the
    smallest key (`heap[0]`) is the best price; `best` is the best live price."""

    __slots__ = ("best", "heap", "is_bid", "levels", "parked", "sign")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.sign = -1 if is_bid else 1
        self.levels: dict[int, Level] = {}
        """The live levels by price."""
        self.heap: list[int] = []
        """Keys of the live levels and of the parked ones, each once."""
        self.parked: dict[int, Level] = {}
        """Empty levels whose key is still in the heap, by price."""
        self.best: int | None = None

    def add(self, order: Order) -> None:
        price = order.price
        level = self.levels.get(price)
        if level is None:
            level = self.parked.pop(price, None)
            if level is None:
                level = Level()
                heappush(self.heap, self.key(price))
            self.levels[price] = level
            best = self.best
            if best is None or self.beyond(best, price):
                self.best = price
        level.append(order)

    def key(self, price: int) -> int:
        """The heap key of a price, and the price of a key: negated on the bid side. (Not a
        product with `sign`: compiled, a product with a negative operand leaves the fast path
        of tagged integers for a `PyLong` multiplication.)"""
        return -price if self.is_bid else price

    def beyond(self, price: int, limit: int) -> bool:
        """Whether `price` is worse than `limit` for an order taking from this side."""
        return price < limit if self.is_bid else price > limit

    def remove_level(self, price: int) -> None:
        """Take the emptied level at `price` out of the live ones."""
        self.parked[price] = self.levels.pop(price)
        if len(self.parked) > len(self.levels) + PARKED_SLACK:
            self._rebuild()
        elif price == self.best:
            self._drop_parked_top()

    def _drop_parked_top(self) -> None:
        """Pop parked keys off the top of the heap until a live one (the best) is there."""
        heap, parked = self.heap, self.parked
        while heap and self.key(heap[0]) in parked:
            del parked[self.key(heappop(heap))]
        self.best = self.key(heap[0]) if heap else None

    def _rebuild(self) -> None:
        """Forget every parked level: the heap holds the live keys only."""
        self.parked.clear()
        self.heap = [self.key(price) for price in self.levels]
        heapify(self.heap)
        self.best = self.key(self.heap[0]) if self.heap else None

    def withdraw(self, order: Order) -> None:
        """Take a live order out (cancel or expiry): O(1)."""
        level = self.levels[order.price]
        level.total -= order.remaining
        level.remove(order)
        order.remaining = 0
        if level.live == 0:
            self.remove_level(order.price)

    def prices(self, limit: int | None = None) -> Iterator[int]:
        """Live prices from best to worst (the best `limit` of them)."""
        if limit is None:
            keys = sorted(self.key(price) for price in self.levels)
        else:
            keys = nsmallest(limit, [self.key(price) for price in self.levels])
        for key in keys:
            yield self.key(key)

    def totals(self, limit: int | None = None) -> Iterator[tuple[int, int]]:
        """(price, total lots) from best to worst."""
        levels = self.levels
        for price in self.prices(limit):
            yield price, levels[price].total

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """(price, total lots) from best to worst, read only as far as the reader goes: what
        `ledger.locks.lock_amount` takes as the asks, at no cost when it needs none."""
        return self.totals()

    def depth(self, limit: int | None = None) -> list[tuple[int, int]]:
        """[(price, total lots)] from best to worst."""
        return list(self.totals(limit))

    def live_orders(self, price: int) -> Iterator[Order]:
        """The live orders of one level in time priority."""
        order = self.levels[price].oldest
        while order is not None:
            yield order
            order = order.newer
