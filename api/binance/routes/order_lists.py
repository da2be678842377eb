"""The /api/v3 OCO routes: `POST /orderList/oco`, `GET` and `DELETE /orderList`,
`GET /openOrderList`, `GET /allOrderList`. A list is placed with the shared planning and
placing of api.services.order_lists; its record and numbering are api.binance.lists'."""

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.binance import lists, render
from api.binance.errors import (
    CANCEL_REJECTED,
    INVALID_ORDER_TYPE,
    NEW_ORDER_REJECTED,
    NO_SUCH_ORDER,
    UNKNOWN_ORDER_COMPOSITION,
    BinanceError,
    backend_timeout,
    bad,
    illegal,
    translate,
)
from api.binance.order_params import (
    ClientOrderIdCheck,
    Order,
    refuse_unsupported,
    respond_type,
    side_of,
    stp_of,
)
from api.binance.params import Params, market_of_params, query_limit, signed
from api.binance.render import canceled_report, json_response, now_ms
from api.binance.symbols import symbol_of
from api.deps import State
from api.errors import ApiError
from api.models import OrderListIn, OrderListLegIn, OrderOut
from api.queries import order as stored_order
from api.services.list_plans import LEG_TYPES, LIMIT_MAKER, leg_ids
from api.services.order_lists import cancel_list, place_list
from api.state import AppState
from xch.market import MarketRules
from xch.order_lists import ListRecord, list_number
from xch.schemas import POST_ONLY

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


def _leg(params: Params, where: str, allowed: tuple[str, ...]) -> OrderListLegIn:
    """One leg's parameters (`aboveType`, `abovePrice`, …) as the native list leg."""
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
    order_type, tif = order.native()
    leg_type = LIMIT_MAKER if tif == POST_ONLY else order_type
    if leg_type not in allowed:
        raise bad(UNKNOWN_ORDER_COMPOSITION, "Unsupported order combination.")
    values = {
        "type": leg_type,
        "price": order.price,
        "stop_price": order.stop_price,
        "tif": order.tif,
        "client_order_id": _client_id(params, f"{where}ClientOrderId"),
    }
    try:
        return OrderListLegIn.model_validate(values)
    except ValidationError as error:
        where_field = next((str(e["loc"][0]) for e in error.errors() if e.get("loc")), "")
        names = {"price": order.name("price"), "stop_price": order.name("stopPrice")}
        raise illegal(names.get(where_field, where_field or "parameter")) from error


def _list_in(market: str, params: Params, client_list_id: str) -> OrderListIn:
    side = side_of(params)
    allowed_above, allowed_below = LEG_TYPES[side]
    above = _leg(params, "above", allowed_above)
    below = _leg(params, "below", allowed_below)
    values = {
        "market": market,
        "side": side,
        "quantity": params.required("quantity"),
        "above": above,
        "below": below,
        "stp": stp_of(params),
        "client_list_id": client_list_id,
    }
    try:
        return OrderListIn.model_validate(values)
    except ValidationError as error:
        raise illegal("quantity") from error


def _answer(
    rules: MarketRules, symbol: str, listed: ListRecord, orders: list[OrderOut]
) -> dict[str, Any]:
    """The list and its legs' reports, as `POST /orderList/oco` answers."""
    done = all(render.order_status(order) in lists.FINAL for order in orders)
    out = lists.list_status(symbol, listed, done)
    out["orderReports"] = [
        lists.order_report(
            rules, symbol, order.model_copy(update={"list_id": listed.list_id}), listed.ts
        )
        for order in orders
    ]
    return out


@router.post("/orderList/oco")
async def new_oco(request: Request, state: State) -> JSONResponse:
    principal, params = await signed(request, state, "trade")
    for where in _WHERE:
        refuse_unsupported(params, *(f"{where}{name}" for name in _LEG_UNSUPPORTED))
    params.only(
        "symbol", "listClientOrderId", "side", "quantity", "newOrderRespType",
        "selfTradePreventionMode", *(f"{w}{name}" for w in _WHERE for name in _LEG_PARAMS),
    )  # fmt: skip
    market, rules, symbol = await market_of_params(state, params)
    respond_type(params, "FULL")
    list_client_id = _client_id(params, "listClientOrderId")
    body = _list_in(market.name, params, list_client_id)
    user = principal.user_id
    markets = await state.registry.all()
    earlier = await lists.by_client_id(state.redis, state.db, markets, user, list_client_id)
    if earlier is not None:
        # A listClientOrderId already used answers with that list (as newClientOrderId does).
        legs = await lists.stored_legs(state.db, user, [earlier])
        stored = [legs[order_id] for order_id, _ in earlier.orders if order_id in legs]
        return json_response(_answer(rules, symbol, earlier, stored))
    list_id = await lists.next_list_id(state.gateway.scripts, market.name)
    legs_ids = leg_ids(list_id)
    listed = ListRecord(
        market.name,
        list_id,
        list_client_id,
        [
            (legs_ids[0], body.above.client_order_id or ""),
            (legs_ids[1], body.below.client_order_id or ""),
        ],
        now_ms(),
    )
    ttl = state.settings.list_record_ttl_seconds
    if not await lists.record(state.redis, user, listed, ttl):
        raise bad(NEW_ORDER_REJECTED, "Duplicate order sent.")
    try:
        status, placed = await place_list(state, user, body, list_id)
    except ApiError as error:
        if error.code != "outcome_unknown":
            await lists.forget(state.redis, user, listed)
        raise translate(error) from error
    if status == 202:
        raise backend_timeout(placing=True)
    return json_response(_answer(rules, symbol, listed, [placed.above, placed.below]))


async def _find_list(state: AppState, user: str, params: Params, client_name: str) -> ListRecord:
    number, client_id = params.integer("orderListId"), params.text(client_name)
    markets = await state.registry.all()
    if number is not None:
        listed = await lists.by_number(state.redis, state.db, markets, user, number)
    elif client_id is not None:
        listed = await lists.by_client_id(state.redis, state.db, markets, user, client_id)
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
async def cancel_list_route(request: Request, state: State) -> JSONResponse:
    """Cancels the list (a working leg; the engine ends the other with it)."""
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
    if listed.market != market.name:
        raise bad(CANCEL_REJECTED, "Unknown order sent.")
    try:
        status, canceled = await cancel_list(state, user, listed.list_id)
    except ApiError as error:
        raise translate(error) from error
    if status == 202:
        raise backend_timeout(placing=False)
    ended = {order.order_id: order.filled_quantity for order in canceled.orders}
    reports = []
    for order_id, _ in listed.orders:
        stored = await stored_order(state.db, user, market.name, order_id)
        filled = ended.get(order_id) or _filled(stored)
        reports.append(canceled_report(rules, symbol, order_id, stored, filled, listed.list_id))
    out = lists.list_status(symbol, listed, True, now_ms())
    out["orderReports"] = reports
    return json_response(out)


def _filled(order: OrderOut | None) -> str:
    return order.filled_quantity if order is not None else "0"


@router.get("/openOrderList")
async def open_lists(request: Request, state: State) -> JSONResponse:
    principal, params = await signed(request, state, "read")
    params.only()
    user = principal.user_id
    working = await lists.open_lists(state.redis, state.db, user)
    legs = await lists.stored_legs(state.db, user, working)
    chosen = [listed for listed in working if not lists.is_done(listed, legs)]
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
        for listed in await lists.all_lists(
            state.redis, state.db, principal.user_id, from_id, limit
        )
        if (from_id is None or list_number(listed.list_id) >= from_id)
        and (start is None or listed.ts >= start)
        and (end is None or listed.ts <= end)
    ]
    # from fromId on, or else the newest, oldest first as Binance answers
    chosen = chosen[:limit] if from_id is not None else chosen[-limit:]
    return json_response(await _statuses(state, principal.user_id, chosen))
