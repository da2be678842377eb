"""OCO order lists: from a request to the engine's `PlaceList` command (every check the engine
would make from the request alone, and the list's one lock), and placing it. Shared by the
native api and the Binance-compatible `/api/v3/orderList/oco`.

A list has an above leg and a below leg of one side and quantity. The above leg executes
when the price rises to it: a post-only limit sell or a stop that triggers on a rise (a
stop-loss buy, a take-profit sell); the below leg when the price falls to it: a post-only
limit buy or a stop that triggers on a fall. So the above leg's price (a limit's price, a
stop's stop price) must be higher than the below leg's. At most one leg is a limit order.
"""

import asyncio
from dataclasses import dataclass

import msgspec
import redis.exceptions

from api.errors import ApiError, from_result_code
from api.models import OrderIn, OrderOut
from api.orders import Planned, placed_order, plan
from api.state import AppState
from engine.gateway import FundsError
from engine.risk import list_lock, spent_asset
from xch.market import MarketRules
from xch.money import MAX_UNITS
from xch.schemas import (
    BUY,
    LIMIT,
    POST_ONLY,
    SELL,
    STOP_TYPES,
    Event,
    OrderRejected,
    PlaceList,
    ResultCode,
    triggers_on_rise,
)


@dataclass(frozen=True, slots=True)
class PlannedList:
    command: PlaceList
    asset: str
    lock: int

    @property
    def leg_ids(self) -> list[str]:
        return [leg.order_id for leg in self.command.legs]


def _invalid(message: str) -> ApiError:
    return ApiError(400, ResultCode.INVALID_ORDER_LIST.reason, message)


def _level(planned: Planned) -> int:
    """Where a leg executes: a limit order's price, a stop order's stop price (ticks)."""
    return planned.command.stop_price or planned.command.price


def leg_fits(body: OrderIn, above: bool) -> bool:
    """Whether `body` can be the above (or below) leg of a list on its side."""
    if body.type == LIMIT:
        return body.tif == POST_ONLY and (body.side == SELL) == above
    return body.type in STOP_TYPES and triggers_on_rise(body.type, body.side) == above


def plan_list(
    rules: MarketRules,
    user: str,
    list_id: str,
    legs: tuple[tuple[str, OrderIn], tuple[str, OrderIn]],
    client_list_id: str = "",
) -> PlannedList:
    """The list's command and lock from its (order id, order) legs, above leg first; ApiError
    for a leg the engine would refuse or a list it would refuse as a whole."""
    (above_id, above), (below_id, below) = legs
    if above.side != below.side or above.side not in (BUY, SELL):
        raise _invalid("both orders of a list have the same side")
    if above.quantity is None or above.quantity != below.quantity:
        raise _invalid("both orders of a list have the same quantity")
    if above.quote_quantity is not None or below.quote_quantity is not None:
        raise _invalid("the orders of a list have a quantity, not a quote quantity")
    if above.type == LIMIT and below.type == LIMIT:
        raise _invalid("at most one order of a list is a limit order")
    if not leg_fits(above, above=True) or not leg_fits(below, above=False):
        raise _invalid(
            "the above order is a post-only limit sell or a stop triggered by a rise, the "
            "below order a post-only limit buy or a stop triggered by a fall"
        )
    planned = [plan(rules, above, user, above_id, None), plan(rules, below, user, below_id, None)]
    if _level(planned[0]) <= _level(planned[1]):
        raise _invalid("the above order's price must be higher than the below order's")
    commands = [msgspec.structs.replace(leg.command, locked=0) for leg in planned]
    lock = list_lock(rules, commands)
    if lock > MAX_UNITS:
        raise ApiError(400, "amount_too_large", "the order's value is too large")
    command = PlaceList(
        list_id=list_id, user=user, legs=commands, locked=lock, client_list_id=client_list_id
    )
    return PlannedList(command, spent_asset(rules, above.side), lock)


async def place_list(state: AppState, market: str, planned: PlannedList) -> list[Event] | None:
    """Lock and enqueue the list, then wait for the engine: its reply's events, or None if it
    did not answer within the reply timeout (the list is in the market's input and will be
    applied). ApiError if the funds do not cover it or the outcome is unknown."""
    user = planned.command.user
    first = planned.leg_ids[0]
    with state.replies.expect("place", first) as reply:
        try:
            entry = await state.gateway.submit(
                market, planned.command, user, planned.asset, planned.lock
            )
        except FundsError as error:
            raise ApiError(400, error.reason, "the order's value is too large") from error
        except redis.exceptions.ConnectionError as error:
            raise ApiError(
                503,
                "outcome_unknown",
                f"lost the connection while enqueuing order list {planned.command.list_id}: "
                "it may or may not have been placed; look it up",
            ) from error
        if entry is None:
            raise from_result_code(ResultCode.INSUFFICIENT_FUNDS)
        try:
            return await asyncio.wait_for(reply, state.settings.reply_timeout_seconds)
        except TimeoutError:
            return None


def placed_legs(rules: MarketRules, planned: PlannedList, events: list[Event]) -> list[OrderOut]:
    """Both legs as the engine's reply leaves them; ApiError with the reason if refused."""
    for event in events:
        if isinstance(event, OrderRejected) and event.order_id in planned.leg_ids:
            raise from_result_code(event.code)
    return [placed_order(rules, order_id, events) for order_id in planned.leg_ids]
