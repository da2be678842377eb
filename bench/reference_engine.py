"""A minimal price-time matching engine: the yardstick `make bench-engine` measures ours by.

Limit and market orders and cancels in pure CPython: per side a `SortedDict` of price levels,
each a FIFO (`deque`) of orders, cancels lazy. No fees, no balances, no self-trade
prevention, no validation, no events: what any engine must at least do, so the ratio of
ours to it is what everything else costs (or saves).
"""

from collections import deque

from sortedcontainers import SortedDict

from xch.schemas import BUY, LIMIT, Cancel, Place


class RestingOrder:
    __slots__ = ("key", "order_id", "remaining", "side")

    def __init__(self, order_id: str, side: str, key: int, remaining: int) -> None:
        self.order_id = order_id
        self.side = side
        self.key = key
        self.remaining = remaining


class Level:
    """The orders at one price in time priority; canceled ones (remaining 0) are dropped when
    matching reaches them, `live` counts the others."""

    __slots__ = ("live", "orders")

    def __init__(self) -> None:
        self.orders: deque[RestingOrder] = deque()
        self.live = 0


class ReferenceEngine:
    """Levels are keyed so that the first is the best: asks by price, bids by -price."""

    def __init__(self) -> None:
        self.bids = SortedDict()
        self.asks = SortedDict()
        self.orders: dict[str, RestingOrder] = {}

    def process(self, command: Place | Cancel) -> None:
        if isinstance(command, Cancel):
            self.cancel(command.order_id)
        elif command.type == LIMIT:
            self.limit(command.order_id, command.side, command.price, command.qty)
        else:
            self.market(command.side, command.qty)

    def limit(self, order_id: str, side: str, price: int, qty: int) -> int:
        """Match, then rest what is left; returns the lots filled."""
        is_buy = side == BUY
        filled = self._match(self.asks if is_buy else self.bids, price if is_buy else -price, qty)
        if filled < qty:
            key = -price if is_buy else price
            book = self.bids if is_buy else self.asks
            level = book.get(key)
            if level is None:
                level = book[key] = Level()
            order = RestingOrder(order_id, side, key, qty - filled)
            level.orders.append(order)
            level.live += 1
            self.orders[order_id] = order
        return filled

    def market(self, side: str, qty: int) -> int:
        """Match at any price; what cannot fill expires. Returns the lots filled."""
        return self._match(self.asks if side == BUY else self.bids, None, qty)

    def cancel(self, order_id: str) -> bool:
        order = self.orders.pop(order_id, None)
        if order is None:
            return False
        book = self.bids if order.side == BUY else self.asks
        level = book[order.key]
        order.remaining = 0
        level.live -= 1
        if not level.live:
            del book[order.key]
        return True

    def _match(self, book: SortedDict, bound: int | None, qty: int) -> int:
        """Fill up to `qty` lots from `book`'s levels with keys up to `bound` (None: all)."""
        remaining = qty
        orders = self.orders
        while remaining and book:
            key, level = book.peekitem(0)
            if bound is not None and key > bound:
                break
            queue = level.orders
            while remaining and queue:
                maker = queue[0]
                lots = maker.remaining
                if lots > remaining:
                    maker.remaining = lots - remaining
                    remaining = 0
                    break
                queue.popleft()
                if lots:
                    remaining -= lots
                    maker.remaining = 0
                    level.live -= 1
                    del orders[maker.order_id]
            if not level.live:
                del book[key]
        return qty - remaining

    def depth(self, side: str) -> list[tuple[int, int]]:
        """[(price, total lots)] of one side, best first."""
        sign = -1 if side == BUY else 1
        book = self.bids if side == BUY else self.asks
        return [
            (key * sign, sum(order.remaining for order in level.orders))
            for key, level in book.items()
        ]
