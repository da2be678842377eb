"""Placing, canceling and reading orders, fills, and quotes.

A place or cancel waits for the engine's committed answer up to the reply timeout; after
that it answers 202 with status `pending` (api.services.submit).
"""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api import queries
from api.deps import OptionalMarket, Reader, State, Trader
from api.errors import ERRORS, ApiError
from api.models import CancelOut, OrderIn, OrderOut, QuoteIn, QuoteOut, UserFillOut
from api.services import orders
from api.services.order_plans import market_of

router = APIRouter(tags=["orders"], responses=ERRORS)

OrderId = Annotated[str, Path(max_length=80, pattern=r"^[a-z0-9-]{1,63}\.[0-9a-f]{1,32}$")]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.post("/order", response_model=OrderOut, responses={202: {"model": OrderOut}})
async def place_order(body: OrderIn, user: Trader, state: State, response: Response) -> OrderOut:
    response.status_code, order = await orders.place(state, user.user_id, body)
    return order


@router.delete("/order/{order_id}", responses={202: {"model": CancelOut}})
async def cancel_order(
    order_id: OrderId, user: Trader, state: State, response: Response
) -> CancelOut:
    response.status_code, canceled = await orders.cancel(state, user.user_id, order_id)
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
    return await orders.quote_order(state, body)
