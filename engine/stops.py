"""Stop orders waiting for their trigger: hidden from the book, ordered by when they trigger.

A stop that triggers on a rising price waits in `rising`, keyed by (stop price, arrival):
as the last price rises, the lowest stop price is reached first. One that triggers on a
falling price waits in `falling`, keyed by (-stop price, arrival). Arrival is the seq of the
stop's `OrderAccepted`, so equal stop prices trigger oldest first.
"""

from sortedcontainers import SortedList

from ledger.tickets import Ticket
from xch.schemas import LIMIT, MARKET, STOP_LIMIT_TYPES, Place, triggers_on_rise


def reached(order: Place | Ticket, last_price: int) -> bool:
    """Whether a last trade price of `last_price` ticks (0: no trade yet) triggers the stop
    order `order`."""
    if not last_price:
        return False
    stop = order.stop_price
    return last_price >= stop if triggers_on_rise(order.type, order.side) else last_price <= stop


class StopOrder:
    """A waiting stop order: the order it becomes (`order`, with the lock it holds) and when
    it triggers. `need` is what the order it becomes must hold once it executes; it differs
    from `locked` only for a leg of an OCO list, whose legs share one lock."""

    __slots__ = ("arrival", "locked", "need", "order", "rises")

    def __init__(self, order: Place, locked: int, need: int, arrival: int) -> None:
        self.order = order
        self.locked = locked
        self.need = need
        self.arrival = arrival
        self.rises = triggers_on_rise(order.type, order.side)

    @property
    def order_id(self) -> str:
        return self.order.order_id

    @property
    def user(self) -> str:
        return self.order.user

    @property
    def stop_price(self) -> int:
        return self.order.stop_price

    def key(self) -> tuple[int, int]:
        stop = self.order.stop_price
        return (stop if self.rises else -stop, self.arrival)

    def becomes(self) -> Ticket:
        """The limit or market order it executes as once triggered."""
        order = self.order
        return Ticket(
            order_id=order.order_id,
            user=order.user,
            side=order.side,
            type=LIMIT if order.type in STOP_LIMIT_TYPES else MARKET,
            price=order.price,
            qty=order.qty,
            quote_qty=order.quote_qty,
            tif=order.tif,
            stp=order.stp,
            locked=self.need,
            client_order_id=order.client_order_id,
        )


class StopBook:
    """The waiting stops of one market, by id, by user and in trigger order."""

    __slots__ = ("by_arrival", "by_id", "by_user", "falling", "rising")

    def __init__(self) -> None:
        self.by_arrival: dict[int, StopOrder] = {}
        self.by_id: dict[str, StopOrder] = {}
        self.by_user: dict[str, dict[str, StopOrder]] = {}
        self.rising: SortedList = SortedList()
        self.falling: SortedList = SortedList()

    def get(self, order_id: str) -> StopOrder | None:
        return self.by_id.get(order_id)

    def add(self, stop: StopOrder) -> None:
        self.by_id[stop.order_id] = stop
        self.by_arrival[stop.arrival] = stop
        self.by_user.setdefault(stop.user, {})[stop.order_id] = stop
        (self.rising if stop.rises else self.falling).add(stop.key())

    def remove(self, stop: StopOrder) -> None:
        del self.by_id[stop.order_id]
        del self.by_arrival[stop.arrival]
        user_stops = self.by_user[stop.user]
        del user_stops[stop.order_id]
        if not user_stops:
            del self.by_user[stop.user]
        (self.rising if stop.rises else self.falling).remove(stop.key())

    def first_reached(self, last_price: int) -> StopOrder | None:
        """The stop to trigger next at `last_price`, or None. Only one direction can have
        reached stops after a move, but should both, rising ones go first."""
        if not last_price or not self.by_id:
            return None
        for keys, sign in ((self.rising, 1), (self.falling, -1)):
            if keys:
                stop_key, arrival = keys[0]
                if (last_price - stop_key * sign) * sign >= 0:
                    stop: StopOrder = self.by_arrival[arrival]
                    return stop
        return None
