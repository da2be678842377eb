"""An order on its way into the engine as a native object: a `Place` command's fields read once.

Compiled (`ledger.compiled.MODULES`), every read of a msgspec struct's field is a generic
`getattr` (about 160 instructions), and the lock, the checks, acceptance and matching of one
order read some 40 of them; a `Ticket` is a mypyc native class, whose fields read as a
pointer each. `Ticket.of` takes all of a `Place`'s fields in one call (`astuple`, in C).
"""

from ledger.natives import AS_TUPLE
from xch.schemas import OrderType, Place, Side, StpMode, TimeInForce


class Ticket:
    """The fields of a `Place` (see there), as native attributes."""

    __slots__ = (
        "client_order_id",
        "locked",
        "order_id",
        "price",
        "qty",
        "quote_qty",
        "side",
        "stop_price",
        "stp",
        "tif",
        "type",
        "user",
    )

    def __init__(
        self,
        order_id: str,
        user: str,
        side: Side,
        type: OrderType,
        price: int,
        qty: int,
        quote_qty: int,
        tif: TimeInForce,
        stp: StpMode,
        locked: int,
        client_order_id: str = "",
        stop_price: int = 0,
    ) -> None:
        self.order_id = order_id
        self.user = user
        self.side = side
        self.type = type
        self.price = price
        self.qty = qty
        self.quote_qty = quote_qty
        self.tif = tif
        self.stp = stp
        self.locked = locked
        self.client_order_id = client_order_id
        self.stop_price = stop_price

    @staticmethod
    def of(place: Place) -> "Ticket":
        # By position, in `Place`'s field order (a test holds the two equal).
        (
            order_id,
            user,
            side,
            order_type,
            price,
            qty,
            quote_qty,
            tif,
            stp,
            locked,
            client_order_id,
            stop_price,
        ) = AS_TUPLE(place)
        return Ticket(
            order_id,
            user,
            side,
            order_type,
            price,
            qty,
            quote_qty,
            tif,
            stp,
            locked,
            client_order_id,
            stop_price,
        )

    def place(self) -> Place:
        """The command again (for what is stored as one: a waiting stop order)."""
        return Place(
            self.order_id,
            self.user,
            self.side,
            self.type,
            self.price,
            self.qty,
            self.quote_qty,
            self.tif,
            self.stp,
            self.locked,
            self.client_order_id,
            self.stop_price,
        )
