"""Placing, canceling and reading orders, fills, and quotes.

A place or cancel waits for the engine's committed answer (the reply on this instance's
channel) up to the reply timeout; after that it answers 202 with status `pending`: the
command is in the market's input and will be applied, it is only not answered yet.
"""

import asyncio
import time
from typing import Annotated, Any

import redis.exceptions
from fastapi import APIRouter, Path, Query, Response

from api import queries
from api.deps import Reader, State, Trader
from api.errors import ApiError, from_result_code
from api.idempotency import Claims
from api.metrics import ENGINE_REPLY, ORDERS
from api.models import (
    CancelOut,
    MarketName,
    OrderIn,
    OrderOut,
    QuoteIn,
    QuoteOut,
    UserFillOut,
)
from api.orders import market_of, new_order_id, placed_order, plan, quote, read_depth
from api.routes import ERRORS
from api.state import AppState
from ledger.gateway import FundsError
from xch.money import format_units
from xch.schemas import BUY, MARKET, Cancel, Event, OrderDone, OrderRejected, ResultCode

router = APIRouter(tags=["orders"], responses=ERRORS)

OrderId = Annotated[str, Path(max_length=80, pattern=r"^[a-z0-9-]{1,63}\.[0-9a-f]{1,32}$")]
Limit = Annotated[int, Query(ge=1, le=500)]
OptionalMarket = Annotated[MarketName | None, Query()]


def _unknown_outcome(order_id: str) -> ApiError:
    return ApiError(
        503,
        "outcome_unknown",
        f"lost the connection while enqueuing order {order_id}: it may or may not have been "
        "placed; look it up, or retry with the same client_order_id",
    )


def _pending(order_id: str, market: str, client_order_id: str | None) -> OrderOut:
    return OrderOut(
        order_id=order_id, client_order_id=client_order_id, market=market, side="", status="pending"
    )


async def _repeat(
    state: AppState, user: str, body: OrderIn, recorded: dict[str, Any]
) -> tuple[int, OrderOut]:
    """The answer to a repeated client_order_id: the first request's order."""
    order_id = recorded["order_id"]
    if "body" in recorded:
        if recorded["status"] >= 400:
            raise ApiError(
                recorded["status"], recorded["body"]["code"], recorded["body"]["message"]
            )
        return recorded["status"], OrderOut.model_validate(recorded["body"])
    market = market_of(order_id) or body.market
    stored = await queries.order(state.db, user, market, order_id)
    if stored is not None:
        return 200, stored
    return 202, _pending(order_id, market, body.client_order_id)


async def wait_reply(state: AppState, future: "asyncio.Future[list[Event]]") -> list[Event] | None:
    started = time.perf_counter()
    try:
        events = await asyncio.wait_for(future, state.settings.reply_timeout_seconds)
    except TimeoutError:
        return None
    ENGINE_REPLY.observe(time.perf_counter() - started)
    return events


async def _release(claims: Claims, user: str, coid: str | None) -> None:
    """Nothing was enqueued: the client_order_id is free again."""
    if coid is not None:
        await claims.release(user, coid)


async def place(
    state: AppState, user: str, body: OrderIn, order_id: str | None = None
) -> tuple[int, OrderOut]:
    """Place an order and wait for the engine: (200, the order) or (202, pending); ApiError
    for a refusal. `order_id` is generated unless given (the Binance routes number theirs)."""
    rules = await state.registry.open_for_orders(body.market)
    asks = None
    if body.type == MARKET and body.side == BUY and body.quantity is not None:
        asks = (await read_depth(state.redis, body.market)).asks
    order_id = order_id or new_order_id(body.market)
    planned = plan(rules, body, user, order_id, asks)
    claims = Claims(state.redis, state.settings.client_order_id_ttl_seconds)
    coid = body.client_order_id
    if coid is not None:
        recorded = await claims.claim(user, coid, order_id)
        if recorded is not None:
            return await _repeat(state, user, body, recorded)
    with state.replies.expect("place", order_id) as reply:
        try:
            entry = await state.gateway.submit(
                body.market, planned.command, user, planned.asset, planned.lock
            )
        except FundsError as error:
            ORDERS.labels("refused").inc()
            await _release(claims, user, coid)
            raise ApiError(400, error.reason, "the order's value is too large") from error
        except redis.exceptions.ConnectionError as error:
            # Outcome unknown: the claim stays, so a retry with the same id cannot double it.
            ORDERS.labels("unknown").inc()
            raise _unknown_outcome(order_id) from error
        if entry is None:
            ORDERS.labels("refused").inc()
            await _release(claims, user, coid)
            raise from_result_code(ResultCode.INSUFFICIENT_FUNDS)
        events = await wait_reply(state, reply)
    if events is None:
        ORDERS.labels("pending").inc()
        return 202, _pending(order_id, body.market, coid)
    try:
        order = placed_order(rules, order_id, events)
    except ApiError as error:
        ORDERS.labels("rejected").inc()
        if coid is not None:
            await claims.record(
                user, coid, order_id, error.status, {"code": error.code, "message": error.message}
            )
        raise
    ORDERS.labels("accepted").inc()
    if coid is not None:
        await claims.record(user, coid, order_id, 200, order.model_dump())
    return 200, order


@router.post("/order", response_model=OrderOut, responses={202: {"model": OrderOut}})
async def place_order(body: OrderIn, user: Trader, state: State, response: Response) -> OrderOut:
    response.status_code, order = await place(state, user.user_id, body)
    return order


async def cancel(state: AppState, user: str, order_id: str) -> tuple[int, CancelOut]:
    """Cancel an order and wait for the engine: (200, canceled) or (202, pending); ApiError
    if the engine refuses (unknown order, another user's)."""
    market = market_of(order_id)
    if market is None:
        raise from_result_code(ResultCode.UNKNOWN_ORDER)
    await state.registry.get(market)
    with state.replies.expect("cancel", order_id) as reply:
        try:
            await state.gateway.submit(market, Cancel(order_id=order_id, user=user), user)
        except redis.exceptions.ConnectionError as error:
            raise ApiError(
                503, "outcome_unknown", "lost the connection; look the order up"
            ) from error
        events = await wait_reply(state, reply)
    if events is None:
        return 202, CancelOut(order_id=order_id, market=market, status="pending")
    first = events[0]
    if isinstance(first, OrderRejected):
        raise from_result_code(first.code)
    assert isinstance(first, OrderDone)
    rules = await state.registry.rules(market)
    return 200, CancelOut(
        order_id=order_id,
        market=market,
        status=first.status,
        filled_quantity=format_units(first.filled_qty, rules.lot),
    )


@router.delete("/order/{order_id}", responses={202: {"model": CancelOut}})
async def cancel_order(
    order_id: OrderId, user: Trader, state: State, response: Response
) -> CancelOut:
    response.status_code, canceled = await cancel(state, user.user_id, order_id)
    return canceled


@router.get("/order/{order_id}")
async def get_order(order_id: OrderId, user: Reader, state: State) -> OrderOut:
    market = market_of(order_id)
    found = market and await queries.order(state.db, user.user_id, market, order_id)
    if not found:
        raise ApiError(404, "unknown_order", "no such order")
    return found


@router.get("/orders/open")
async def open_orders(
    user: Reader, state: State, market: OptionalMarket = None, limit: Limit = 100
) -> list[OrderOut]:
    return await queries.orders(state.db, user.user_id, market, open_only=True, limit=limit)


@router.get("/orders/history")
async def order_history(
    user: Reader, state: State, market: OptionalMarket = None, limit: Limit = 100
) -> list[OrderOut]:
    return await queries.orders(state.db, user.user_id, market, open_only=False, limit=limit)


@router.get("/fills")
async def fills(
    user: Reader, state: State, market: OptionalMarket = None, limit: Limit = 100
) -> list[UserFillOut]:
    return await queries.user_fills(state.db, user.user_id, market, limit)


@router.post("/order/quote")
async def order_quote(body: QuoteIn, _: Reader, state: State) -> QuoteOut:
    rules = await state.registry.rules(body.market)
    return quote(rules, body, await read_depth(state.redis, body.market))
