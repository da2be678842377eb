"""OCO lists (one-cancels-the-other): from a list request to one `PlaceList` command and its
lock, and from the engine's reply back to the list.

A list's id is made like an order id (`{market}.{random}`); its legs' ids are the list id
with `0` (above) and `1` (below) appended, so a cancel finds both legs without a lookup.
"""

from dataclasses import dataclass
from typing import cast

import msgspec

from api.errors import ApiError
from api.models import (
    OrderIn,
    OrderListIn,
    OrderListLegIn,
    OrderListOut,
    OrderOut,
    OrderType,
    TimeInForce,
)
from api.queries import StoredList
from api.services.order_plans import WAITING, executes_as, placed_order, plan, raise_rejection
from ledger.locks import list_lock, spent_asset
from xch.market import MarketRules
from xch.schemas import (
    BUY,
    LIMIT,
    POST_ONLY,
    STOP_LOSS,
    STOP_LOSS_LIMIT,
    TAKE_PROFIT,
    TAKE_PROFIT_LIMIT,
    Event,
    OrderRejected,
    Place,
    PlaceList,
)

LIMIT_MAKER = "limit_maker"
"""A list leg that is a post-only limit order (Binance's LIMIT_MAKER)."""

PROFIT_LEGS = (LIMIT_MAKER, TAKE_PROFIT, TAKE_PROFIT_LIMIT)
LOSS_LEGS = (STOP_LOSS, STOP_LOSS_LIMIT)
LEG_TYPES = {
    # side: (types allowed above, types allowed below), as Binance's OCO has them
    BUY: (LOSS_LEGS, PROFIT_LEGS),
    "sell": (PROFIT_LEGS, LOSS_LEGS),
}
WORKING = ("new", "partially_filled", WAITING)
"""The statuses of an order that can still trade."""


@dataclass(frozen=True, slots=True)
class PlannedList:
    command: PlaceList
    asset: str
    lock: int


def leg_ids(list_id: str) -> tuple[str, str]:
    """The order ids of a list's legs (above, below)."""
    return f"{list_id}0", f"{list_id}1"


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_order_list", message)


def _leg_order(
    body: OrderListIn, name: str, leg: OrderListLegIn, allowed: tuple[str, ...]
) -> OrderIn:
    """A leg as the order request it amounts to (a limit_maker leg: a post-only limit)."""
    if leg.type not in allowed:
        raise _invalid(f"a {body.side} list's {name} leg must be one of {', '.join(allowed)}")
    if leg.type == LIMIT_MAKER:
        if leg.tif is not None:
            raise _invalid(f"the {name} leg is a limit_maker: it is post-only and takes no tif")
        order_type, tif = LIMIT, POST_ONLY
    else:
        if leg.tif is not None and executes_as(leg.type) != LIMIT:
            raise _invalid(f"the {name} leg is a {leg.type}: it takes no tif")
        order_type, tif = leg.type, leg.tif or "GTC"
    return OrderIn(
        market=body.market,
        side=body.side,
        type=cast(OrderType, order_type),
        price=leg.price,
        quantity=body.quantity,
        tif=cast(TimeInForce, tif),
        stp=body.stp,
        client_order_id=leg.client_order_id,
        stop_price=leg.stop_price,
    )


def _level(leg: Place) -> int:
    """The price at which a leg starts to work: its stop price, or a limit_maker's price."""
    return leg.stop_price or leg.price


def plan_list(rules: MarketRules, body: OrderListIn, user: str, list_id: str) -> PlannedList:
    """The PlaceList command and its lock; ApiError for anything the engine would refuse by
    the request alone. Each leg is checked as the order it is; the list locks the larger of
    the legs' locks (`ledger.locks.list_lock`)."""
    allowed_above, allowed_below = LEG_TYPES[body.side]
    above_id, below_id = leg_ids(list_id)
    legs = [
        plan(rules, _leg_order(body, name, leg, allowed), user, order_id, None).command
        for name, leg, allowed, order_id in (
            ("above", body.above, allowed_above, above_id),
            ("below", body.below, allowed_below, below_id),
        )
    ]
    if _level(legs[0]) <= _level(legs[1]):
        raise _invalid("the above leg's price must be higher than the below leg's")
    lock = list_lock(rules, legs)
    command = PlaceList(
        list_id=list_id,
        user=user,
        legs=[msgspec.structs.replace(leg, locked=0) for leg in legs],
        locked=lock,
        client_list_id=body.client_list_id or "",
    )
    return PlannedList(command, spent_asset(rules, body.side), lock)


def list_status(above: OrderOut, below: OrderOut) -> str:
    """open: both legs work; executing: one ended and the other works; done: both ended."""
    statuses = (above.status, below.status)
    if "pending" in statuses:
        return "pending"
    working = sum(status in WORKING for status in statuses)
    return ("done", "executing", "open")[working]


def list_out(
    list_id: str, client_list_id: str | None, above: OrderOut, below: OrderOut
) -> OrderListOut:
    return OrderListOut(
        list_id=list_id,
        client_list_id=client_list_id,
        market=above.market,
        side=above.side,
        quantity=above.quantity,
        status=list_status(above, below),
        above=above,
        below=below,
    )


def stored_list_out(stored: StoredList) -> OrderListOut:
    return list_out(stored.list_id, stored.client_list_id, stored.above, stored.below)


def placed_list(rules: MarketRules, command: PlaceList, events: list[Event]) -> OrderListOut:
    """The list as the engine's reply to its PlaceList leaves it; ApiError if refused (a
    refused list is refused leg by leg, with one reason)."""
    for event in events:
        if isinstance(event, OrderRejected) and event.op == "place_list":
            raise_rejection(event)
    above, below = (placed_order(rules, leg.order_id, events) for leg in command.legs)
    return list_out(command.list_id, command.client_list_id or None, above, below)
