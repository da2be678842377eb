"""OCO order lists: place one (both legs in one command, one lock), read, cancel, list the
open ones. Placing and canceling wait for the engine like single orders do (202 `pending`
after the reply timeout)."""

from typing import Annotated, Any

import redis.exceptions
from fastapi import APIRouter, Path, Query, Response

from api import queries
from api.deps import Reader, State, Trader
from api.errors import ApiError, from_result_code
from api.idempotency import LIST_CLAIMS, Claims
from api.metrics import ORDERS
from api.models import (
    CancelOut,
    OrderListCancelOut,
    OrderListIn,
    OrderListOut,
    OrderOut,
)
from api.order_lists import leg_ids, list_out, placed_list, plan_list, stored_list_out
from api.orders import market_of, new_order_id
from api.routes import ERRORS
from api.routes.orders import OptionalMarket, wait_reply
from api.state import AppState
from ledger.gateway import FundsError
from xch.money import format_units
from xch.schemas import Cancel, OrderDone, OrderRejected, ResultCode

router = APIRouter(tags=["order-lists"], responses=ERRORS)

ListId = Annotated[str, Path(max_length=80, pattern=r"^[a-z0-9-]{1,63}\.[0-9a-f]{1,32}$")]
Limit = Annotated[int, Query(ge=1, le=250)]


def _unknown_list() -> ApiError:
    return ApiError(404, "unknown_order", "no such order list")


def _pending(list_id: str, body: OrderListIn) -> OrderListOut:
    above, below = (
        OrderOut(
            order_id=order_id,
            market=body.market,
            side=body.side,
            quantity=body.quantity,
            status="pending",
            list_id=list_id,
        )
        for order_id in leg_ids(list_id)
    )
    return list_out(list_id, body.client_list_id, above, below)


async def _repeat(
    state: AppState, user: str, body: OrderListIn, recorded: dict[str, Any]
) -> tuple[int, OrderListOut]:
    """The answer to a repeated client_list_id: the first request's list."""
    list_id = recorded["order_id"]
    if "body" in recorded:
        if recorded["status"] >= 400:
            raise ApiError(
                recorded["status"], recorded["body"]["code"], recorded["body"]["message"]
            )
        return recorded["status"], OrderListOut.model_validate(recorded["body"])
    stored = await queries.order_list(state.db, user, market_of(list_id) or body.market, list_id)
    if stored is not None:
        return 200, stored_list_out(stored)
    return 202, _pending(list_id, body)


async def place_list(
    state: AppState, user: str, body: OrderListIn, list_id: str | None = None
) -> tuple[int, OrderListOut]:
    """Place an OCO list and wait for the engine: (200, the list) or (202, pending);
    ApiError for a refusal. `list_id` is generated unless given (the Binance routes number
    theirs)."""
    rules = await state.registry.open_for_orders(body.market)
    list_id = list_id or new_order_id(body.market)
    planned = plan_list(rules, body, user, list_id)
    claims = Claims(state.redis, state.settings.client_order_id_ttl_seconds, LIST_CLAIMS)
    clid = body.client_list_id
    if clid is not None:
        recorded = await claims.claim(user, clid, list_id)
        if recorded is not None:
            return await _repeat(state, user, body, recorded)
    with state.replies.expect("place_list", planned.command.legs[0].order_id) as reply:
        try:
            entry = await state.gateway.submit(
                body.market, planned.command, user, planned.asset, planned.lock
            )
        except FundsError as error:
            ORDERS.labels("refused").inc()
            if clid is not None:
                await claims.release(user, clid)
            raise ApiError(400, error.reason, "the list's value is too large") from error
        except redis.exceptions.ConnectionError as error:
            # Outcome unknown: the claim stays, so a retry with the same id cannot double it.
            ORDERS.labels("unknown").inc()
            raise ApiError(
                503,
                "outcome_unknown",
                f"lost the connection while enqueuing order list {list_id}: it may or may not "
                "have been placed; look it up, or retry with the same client_list_id",
            ) from error
        if entry is None:
            ORDERS.labels("refused").inc()
            if clid is not None:
                await claims.release(user, clid)
            raise from_result_code(ResultCode.INSUFFICIENT_FUNDS)
        events = await wait_reply(state, reply)
    if events is None:
        ORDERS.labels("pending").inc()
        return 202, _pending(list_id, body)
    try:
        placed = placed_list(rules, planned.command, events)
    except ApiError as error:
        ORDERS.labels("rejected").inc()
        if clid is not None:
            body_out = {"code": error.code, "message": error.message}
            await claims.record(user, clid, list_id, error.status, body_out)
        raise
    ORDERS.labels("accepted").inc()
    if clid is not None:
        await claims.record(user, clid, list_id, 200, placed.model_dump())
    return 200, placed


@router.post("/order-lists", response_model=OrderListOut, responses={202: {"model": OrderListOut}})
async def place_order_list(
    body: OrderListIn, user: Trader, state: State, response: Response
) -> OrderListOut:
    response.status_code, placed = await place_list(state, user.user_id, body)
    return placed


async def cancel_list(state: AppState, user: str, list_id: str) -> tuple[int, OrderListCancelOut]:
    """Cancel an OCO list by canceling a leg that still works (the engine ends the other):
    the above leg, or the below leg if the above one has ended already."""
    market = market_of(list_id)
    if market is None:
        raise _unknown_list()
    rules = await state.registry.rules(market)
    legs = leg_ids(list_id)
    for order_id in legs:
        with state.replies.expect("cancel", order_id) as reply:
            try:
                await state.gateway.submit(market, Cancel(order_id=order_id, user=user), user)
            except redis.exceptions.ConnectionError as error:
                raise ApiError(
                    503, "outcome_unknown", "lost the connection; look the list up"
                ) from error
            events = await wait_reply(state, reply)
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


@router.get("/order-lists/open")
async def open_order_lists(
    user: Reader, state: State, market: OptionalMarket = None, limit: Limit = 100
) -> list[OrderListOut]:
    lists = await queries.open_order_lists(state.db, user.user_id, market, limit)
    return [stored_list_out(stored) for stored in lists]


@router.get("/order-lists/{list_id}")
async def get_order_list(list_id: ListId, user: Reader, state: State) -> OrderListOut:
    market = market_of(list_id)
    stored = market and await queries.order_list(state.db, user.user_id, market, list_id)
    if not stored:
        raise _unknown_list()
    return stored_list_out(stored)


@router.delete("/order-lists/{list_id}", responses={202: {"model": OrderListCancelOut}})
async def cancel_order_list(
    list_id: ListId, user: Trader, state: State, response: Response
) -> OrderListCancelOut:
    response.status_code, canceled = await cancel_list(state, user.user_id, list_id)
    return canceled
