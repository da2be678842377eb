"""OCO order lists: place one (both legs in one command, one lock), read, cancel, list the
open ones. Placing and canceling wait for the engine like single orders do (202 `pending`
after the reply timeout)."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api import queries
from api.deps import OptionalMarket, Reader, State, Trader
from api.errors import ERRORS
from api.models import OrderListCancelOut, OrderListIn, OrderListOut
from api.services import order_lists
from api.services.list_plans import stored_list_out
from api.services.order_plans import market_of

router = APIRouter(tags=["order-lists"], responses=ERRORS)

ListId = Annotated[str, Path(max_length=80, pattern=r"^[a-z0-9-]{1,63}\.[0-9a-f]{1,32}$")]
Limit = Annotated[int, Query(ge=1, le=250)]


@router.post("/order-lists", response_model=OrderListOut, responses={202: {"model": OrderListOut}})
async def place_order_list(
    body: OrderListIn, user: Trader, state: State, response: Response
) -> OrderListOut:
    response.status_code, placed = await order_lists.place_list(state, user.user_id, body)
    return placed


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
        raise order_lists.unknown_list()
    return stored_list_out(stored)


@router.delete("/order-lists/{list_id}", responses={202: {"model": OrderListCancelOut}})
async def cancel_order_list(
    list_id: ListId, user: Trader, state: State, response: Response
) -> OrderListCancelOut:
    response.status_code, canceled = await order_lists.cancel_list(state, user.user_id, list_id)
    return canceled
