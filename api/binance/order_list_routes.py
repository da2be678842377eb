"""The /api/v3 OCO routes: `POST /orderList/oco`, `GET` and `DELETE /orderList`,
`GET /openOrderList`, `GET /allOrderList`. A list is placed with the shared planning and
placing of api.order_lists; its record and numbering are api.binance.lists'."""

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.binance import lists, render
from api.binance.errors import (
    CANCEL_REJECTED,
    INVALID_ORDER_TYPE,
    NEW_ORDER_REJECTED,
    NO_SUCH_ORDER,
    TIMEOUT,
    UNKNOWN_ORDER_COMPOSITION,
    BinanceError,
    bad,
    illegal,
    translate,
)
from api.binance.params import Params, signed
from api.binance.routes import (
    ClientOrderIdCheck,
    Order,
    canceled_report,
    json_response,
    market_of_params,
    now_ms,
    query_limit,
    refuse_unsupported,
    respond_type,
    side_of,
    stp_of,
)
from api.binance.symbols import next_order_id, number_of, symbol_of
from api.deps import State
from api.errors import ApiError
from api.models import OrderIn, OrderOut
from api.order_lists import leg_fits, place_list, placed_legs, plan_list
from api.queries import order as stored_order
from api.routes.orders import cancel
from api.state import AppState
from xch.market import MarketRules
from xch.order_lists import ListRecord

router = APIRouter(prefix="/api/v3", include_in_schema=False)

_WHERE = ("above", "below")
_LEG_PARAMS = ("Type", "ClientOrderId", "Price", "StopPrice", "TimeInForce")
_LEG_UNSUPPORTED = (
    "IcebergQty", "TrailingDelta", "StrategyId", "StrategyType", "PegPriceType",
    "PegOffsetType", "PegOffsetValue",
)  # fmt: skip
_LEG_TYPES = ("LIMIT_MAKER", *render.STOP_ORDER_TYPES)
_MAX_LISTS = 1000


def _client_id(params: Params, name: str) -> str:
    value = params.text(name)
    if value is None:
        return secrets.token_hex(11)
    try:
        return ClientOrderIdCheck.validate_python(value)
    except ValueError as error:
        raise illegal(name) from error


def _leg(params: Params, where: str, market: str, side: str, stp: str) -> OrderIn:
    kind = params.required(f"{where}Type")
    if kind not in _LEG_TYPES:
        raise bad(INVALID_ORDER_TYPE, "Invalid orderType.")
    order = Order(
        kind=kind,
        tif=params.text(f"{where}TimeInForce"),
        price=params.text(f"{where}Price"),
        quantity=params.required("quantity"),
        quote_quantity=None,
        stop_price=params.text(f"{where}StopPrice"),
        prefix=where,
    )
    body = order.order_in(market, side, stp, _client_id(params, f"{where}ClientOrderId"))
    if not leg_fits(body, above=where == "above"):
        raise bad(UNKNOWN_ORDER_COMPOSITION, "Unsupported order combination.")
    return body


def _report(
    rules: MarketRules, symbol: str, listed: ListRecord, order: OrderOut, time: int
) -> dict[str, Any]:
    return lists.order_report(
        rules, symbol, order.model_copy(update={"list_id": listed.list_id}), time
    )


@router.post("/orderList/oco")
async def new_oco(request: Request, state: State) -> JSONResponse:
    principal, params = await signed(request, state, "trade")
    for where in _WHERE:
        refuse_unsupported(params, *(f"{where}{name}" for name in _LEG_UNSUPPORTED))
    params.only(
        "symbol", "listClientOrderId", "side", "quantity", "newOrderRespType",
        "selfTradePreventionMode", *(f"{w}{name}" for w in _WHERE for name in _LEG_PARAMS),
    )  # fmt: skip
    market, _, symbol = await market_of_params(state, params)
    respond_type(params, "FULL")
    side, stp = side_of(params), stp_of(params)
    above, below = (_leg(params, where, market.name, side, stp) for where in _WHERE)
    list_client_id = _client_id(params, "listClientOrderId")
    user = principal.user_id
    try:
        rules = await state.registry.open_for_orders(market.name)
        list_id = await lists.next_list_id(state.redis, market.name)
        ids = (
            await next_order_id(state.redis, market.name),
            await next_order_id(state.redis, market.name),
        )
        planned = plan_list(
            rules, user, list_id, ((ids[0], above), (ids[1], below)), list_client_id
        )
    except ApiError as error:
        raise translate(error) from error
    now = now_ms()
    legs = [(ids[0], above.client_order_id or ""), (ids[1], below.client_order_id or "")]
    listed = ListRecord(market.name, list_id, list_client_id, legs, now)
    if not await lists.record(state.redis, user, listed):
        raise bad(NEW_ORDER_REJECTED, "Duplicate order sent.")
    try:
        events = await place_list(state, market.name, planned)
        if events is None:
            raise BinanceError(
                503,
                TIMEOUT,
                "Timeout waiting for response from backend server. Send status unknown; "
                "execution status unknown.",
            )
        orders = placed_legs(rules, planned, events)
    except ApiError as error:
        if error.code != "outcome_unknown":
            await lists.forget(state.redis, user, listed)
        raise translate(error) from error
    done = all(render.order_status(order) in lists.FINAL for order in orders)
    out = lists.list_status(symbol, listed, done, now)
    out["orderReports"] = [_report(rules, symbol, listed, order, now) for order in orders]
    return json_response(out)


async def _find_list(state: AppState, user: str, params: Params, client_name: str) -> ListRecord:
    number, client_id = params.integer("orderListId"), params.text(client_name)
    if number is not None:
        listed = await lists.by_number(state.redis, user, number)
    elif client_id is not None:
        listed = await lists.by_client_id(state.redis, user, client_id)
    else:
        raise bad(
            -1102,
            f"Param '{client_name}' or 'orderListId' must be sent, but both were empty/null!",
        )
    if listed is None:
        raise bad(NO_SUCH_ORDER, "Order list does not exist.")
    return listed


async def _statuses(state: AppState, user: str, chosen: list[ListRecord]) -> list[dict[str, Any]]:
    """The lists of markets that still exist, as Binance's list objects."""
    markets = await state.registry.all()
    legs = await lists.stored_legs(state.db, user, chosen)
    return [
        lists.list_status(symbol_of(markets[listed.market]), listed, lists.is_done(listed, legs))
        for listed in chosen
        if listed.market in markets
    ]


@router.get("/orderList")
async def query_list(request: Request, state: State) -> JSONResponse:
    principal, params = await signed(request, state, "read")
    params.only("orderListId", "origClientOrderId")
    listed = await _find_list(state, principal.user_id, params, "origClientOrderId")
    found = await _statuses(state, principal.user_id, [listed])
    if not found:
        raise bad(NO_SUCH_ORDER, "Order list does not exist.")
    return json_response(found[0])


@router.delete("/orderList")
async def cancel_list(request: Request, state: State) -> JSONResponse:
    """Cancels the list's first working leg; the engine ends the other with it."""
    principal, params = await signed(request, state, "trade")
    params.only("symbol", "orderListId", "listClientOrderId", "newClientOrderId")
    market, rules, symbol = await market_of_params(state, params)
    user = principal.user_id
    try:
        listed = await _find_list(state, user, params, "listClientOrderId")
    except BinanceError as error:
        if error.code == NO_SUCH_ORDER:
            raise bad(CANCEL_REJECTED, "Unknown order sent.") from error
        raise
    legs = await lists.stored_legs(state.db, user, [listed])
    if listed.market != market.name or lists.is_done(listed, legs):
        raise bad(CANCEL_REJECTED, "Unknown order sent.")
    working = next(
        order_id
        for order_id, _ in listed.orders
        if order_id not in legs or render.order_status(legs[order_id]) not in lists.FINAL
    )
    try:
        status, canceled = await cancel(state, user, working)
    except ApiError as error:
        raise translate(error) from error
    if status == 202:
        raise BinanceError(503, TIMEOUT, "Timeout waiting for response from backend server.")
    now = now_ms()
    reports = []
    for order_id, _ in listed.orders:
        stored = await stored_order(state.db, user, market.name, order_id)
        filled = canceled.filled_quantity if order_id == working else None
        reports.append(
            canceled_report(
                rules, symbol, order_id, stored, filled or _filled(stored), listed.list_id
            )
        )
    out = lists.list_status(symbol, listed, True, now)
    out["orderReports"] = reports
    return json_response(out)


def _filled(order: OrderOut | None) -> str:
    return order.filled_quantity if order is not None else "0"


@router.get("/openOrderList")
async def open_lists(request: Request, state: State) -> JSONResponse:
    principal, params = await signed(request, state, "read")
    params.only()
    user = principal.user_id
    every = await lists.every_list(state.redis, user)
    legs = await lists.stored_legs(state.db, user, every)
    chosen = [listed for listed in every if not lists.is_done(listed, legs)]
    return json_response(await _statuses(state, user, chosen))


@router.get("/allOrderList")
async def all_lists(request: Request, state: State) -> JSONResponse:
    principal, params = await signed(request, state, "read")
    params.only("fromId", "startTime", "endTime", "limit")
    from_id = params.integer("fromId")
    start, end = params.integer("startTime"), params.integer("endTime")
    if from_id is not None and (start is not None or end is not None):
        raise bad(-1128, "Combination of optional parameters invalid.")
    limit = query_limit(params, 500, _MAX_LISTS)
    chosen = [
        listed
        for listed in await lists.every_list(state.redis, principal.user_id)
        if (from_id is None or number_of(listed.list_id) >= from_id)
        and (start is None or listed.ts >= start)
        and (end is None or listed.ts <= end)
    ]
    return json_response(await _statuses(state, principal.user_id, chosen[:limit]))
