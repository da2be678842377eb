"""OCO order lists: place one (both legs in one command, one lock) and cancel one. The
native and the Binance routes both call these; placing goes through api.services.submit,
as a single order's does."""

from typing import Any, ClassVar

from api import queries
from api.errors import ApiError, from_result_code
from api.models import CancelOut, OrderListCancelOut, OrderListIn, OrderListOut, OrderOut
from api.replies import Op
from api.services import submit
from api.services.idempotency import LIST_CLAIMS
from api.services.list_plans import leg_ids, list_out, placed_list, plan_list, stored_list_out
from api.services.order_plans import market_of, new_order_id
from api.state import AppState
from xch.market import MarketRules
from xch.money import format_units
from xch.schemas import Event, OrderDone, OrderRejected, PlaceList, ResultCode


def unknown_list() -> ApiError:
    return ApiError(404, "unknown_order", "no such order list")


class ListPlacement(submit.Placement[OrderListOut]):
    """An OCO list, planned; the engine's reply is recognized by its first leg."""

    noun: ClassVar[str] = "order list"
    too_large: ClassVar[str] = "the list's value is too large"
    client_id_name: ClassVar[str] = "client_list_id"
    claims: ClassVar[str] = LIST_CLAIMS
    op: ClassVar[Op] = "place_list"

    def __init__(self, rules: MarketRules, body: OrderListIn, user: str, list_id: str) -> None:
        planned = plan_list(rules, body, user, list_id)
        super().__init__(
            body.market, list_id, body.client_list_id, planned.command, planned.asset, planned.lock
        )
        self.rules = rules
        self.body = body
        self.list_command: PlaceList = planned.command

    @property
    def reply_id(self) -> str:
        return self.list_command.legs[0].order_id

    def pending(self, placement_id: str) -> OrderListOut:
        body = self.body
        above, below = (
            OrderOut(
                order_id=order_id,
                market=body.market,
                side=body.side,
                quantity=body.quantity,
                status="pending",
                list_id=placement_id,
            )
            for order_id in leg_ids(placement_id)
        )
        return list_out(placement_id, body.client_list_id, above, below)

    async def stored(self, state: AppState, user: str, placement_id: str) -> OrderListOut | None:
        market = market_of(placement_id) or self.market
        stored = await queries.order_list(state.db, user, market, placement_id)
        return None if stored is None else stored_list_out(stored)

    def answer(self, events: list[Event]) -> OrderListOut:
        return placed_list(self.rules, self.list_command, events)

    def recorded(self, body: dict[str, Any]) -> OrderListOut:
        return OrderListOut.model_validate(body)


async def place_list(
    state: AppState, user: str, body: OrderListIn, list_id: str | None = None
) -> tuple[int, OrderListOut]:
    """Place an OCO list and wait for the engine: (200, the list) or (202, pending);
    ApiError for a refusal. `list_id` is generated unless given (the Binance routes number
    theirs)."""
    rules = await state.registry.open_for_orders(body.market)
    placement = ListPlacement(rules, body, user, list_id or new_order_id(body.market))
    return await submit.place(state, user, placement)


async def cancel_list(state: AppState, user: str, list_id: str) -> tuple[int, OrderListCancelOut]:
    """Cancel an OCO list by canceling a leg that still works (the engine ends the other):
    the above leg, or the below leg if the above one has ended already."""
    market = market_of(list_id)
    if market is None:
        raise unknown_list()
    rules = await state.registry.rules(market)
    legs = leg_ids(list_id)
    for order_id in legs:
        events = await submit.cancel(state, market, user, order_id, "list")
        if events is None:
            return 202, OrderListCancelOut(
                list_id=list_id, market=market, status="pending", orders=[]
            )
        first = events[0]
        if isinstance(first, OrderRejected):
            if first.code == ResultCode.UNKNOWN_ORDER:
                continue
            raise from_result_code(first.code)
        ended = [
            CancelOut(
                order_id=event.order_id,
                market=market,
                status=event.status,
                filled_quantity=format_units(event.filled_qty, rules.lot),
            )
            for event in events
            if isinstance(event, OrderDone) and event.order_id in legs
        ]
        return 200, OrderListCancelOut(
            list_id=list_id, market=market, status="canceled", orders=ended
        )
    raise ApiError(404, "unknown_order", "no such open order list")
