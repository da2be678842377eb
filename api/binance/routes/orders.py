"""The /api/v3 order routes: place (and test), query, cancel (one or all of a market), list
open and all orders, and the user's trades. Placing and canceling are api.services.orders',
the native api's."""

import secrets
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.binance import queries as bqueries
from api.binance import render
from api.binance.errors import (
    CANCEL_REJECTED,
    NO_SUCH_ORDER,
    BinanceError,
    backend_timeout,
    bad,
    illegal,
    invalid_symbol,
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
from api.binance.params import (
    MAX_MS,
    Params,
    market_of_params,
    query_limit,
    signed,
    signed_order,
)
from api.binance.render import canceled_report, json_response, now_ms
from api.binance.symbols import (
    by_symbol,
    number_of,
    numbered_order_id,
    order_id_of,
    parse_order_number,
    symbol_of,
)
from api.deps import State
from api.errors import ApiError
from api.models import OrderIn, OrderOut
from api.queries import order as stored_order
from api.services import orders as service
from api.state import AppState
from storage.klines import utc_from_ms
from xch.money import format_minor, format_units
from xch.schemas import BUY, OrderDone

router = APIRouter(prefix="/api/v3", include_in_schema=False)

_ORDER_PARAMS = (
    "symbol", "side", "type", "timeInForce", "quantity", "quoteOrderQty", "price",
    "stopPrice", "newClientOrderId", "newOrderRespType", "selfTradePreventionMode",
    "computeCommissionRates",
)  # fmt: skip
_UNSUPPORTED = ("trailingDelta", "icebergQty", "strategyId", "strategyType")


def _time(params: Params, name: str) -> datetime | None:
    value = params.integer(name, high=MAX_MS)
    return None if value is None else utc_from_ms(value)


def _order_in(market: str, params: Params) -> OrderIn:
    """Binance's order parameters as the native api's order request."""
    refuse_unsupported(params, *_UNSUPPORTED)
    params.only(*_ORDER_PARAMS)
    side = side_of(params)
    order = Order(
        kind=params.required("type"),
        tif=params.text("timeInForce"),
        price=params.text("price"),
        quantity=params.text("quantity"),
        quote_quantity=params.text("quoteOrderQty"),
        stop_price=params.text("stopPrice"),
    )
    client_order_id = params.text("newClientOrderId") or secrets.token_hex(11)
    return order.order_in(market, side, stp_of(params), client_order_id)


def _claim_ttl(state: AppState, params: Params) -> int:
    """How long the order's client id stays claimed: a made-up one only until it is stored."""
    settings = state.settings
    if params.text("newClientOrderId"):
        return settings.binance_client_order_id_ttl_seconds
    return settings.generated_client_order_id_ttl_seconds


@router.post("/order")
async def new_order(request: Request, state: State) -> JSONResponse:
    principal, params, number = await signed_order(request, state)
    market, rules, symbol = await market_of_params(state, params)
    body = _order_in(market.name, params)
    kind = params.required("type")
    respond = respond_type(params, "FULL" if kind in ("LIMIT", "MARKET") else "ACK")
    order_id = numbered_order_id(market.name, number)
    chosen = params.text("newClientOrderId") is not None
    try:
        status, order = await service.place(
            state, principal.user_id, body, order_id, _claim_ttl(state, params), chosen
        )
    except ApiError as error:
        if error.code != render.FOK_UNFILLABLE:
            raise translate(error) from error
        order = OrderOut(
            order_id=order_id,
            client_order_id=body.client_order_id,
            market=market.name,
            side=body.side,
            type=body.type,
            tif=body.tif,
            stp=body.stp,
            price=body.price,
            quantity=body.quantity,
            status="rejected",
            reason=render.FOK_UNFILLABLE,
            filled_quantity=format_units(0, rules.lot),
            filled_quote=format_minor(0, rules.quote_scale),
            created_at=now_ms(),
        )
        status = 200
    if status == 202:
        raise backend_timeout(placing=True)
    ack = {
        "symbol": symbol,
        "orderId": number_of(order.order_id),
        "orderListId": -1,
        "clientOrderId": order.client_order_id or "",
        "transactTime": order.created_at or now_ms(),
    }
    if respond == "ACK":
        return json_response(ack)
    result = ack | render.order_result(rules, symbol, order)
    result["workingTime"] = ack["transactTime"]
    if respond == "FULL":
        result["fills"] = [render.fill(fill) for fill in order.fills]
    return json_response(result)


@router.post("/order/test")
async def test_order(request: Request, state: State) -> JSONResponse:
    """Every check the api makes before the engine, nothing placed."""
    principal, params = await signed(request, state, "trade")
    market, _, _ = await market_of_params(state, params)
    body = _order_in(market.name, params)
    try:
        await service.check(state, principal.user_id, body, order_id_of(market.name, 1))
    except ApiError as error:
        raise translate(error) from error
    return json_response({})


async def _find(state: AppState, user: str, market: str, params: Params) -> str:
    """The order id named by `orderId` or `origClientOrderId`."""
    number, client_id = params.text("orderId"), params.text("origClientOrderId")
    if number is not None:
        return order_id_of(market, parse_order_number(number))
    if client_id is None:
        raise bad(
            -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
        )
    try:
        ClientOrderIdCheck.validate_python(client_id)
    except ValidationError as error:
        raise illegal("origClientOrderId") from error
    # The claim names the order at once; the stored order only once dbproc has it.
    order_id = await service.claimed_order_id(state, user, client_id)
    if order_id is not None and order_id.startswith(f"{market}."):
        return order_id
    stored = await bqueries.order_by_client_id(state.db, user, market, client_id)
    if stored is None:
        raise bad(NO_SUCH_ORDER, "Order does not exist.")
    return stored.order_id


@router.get("/order")
async def query_order(request: Request, state: State) -> JSONResponse:
    principal, params = await signed(request, state, "read")
    params.only("symbol", "orderId", "origClientOrderId")
    _, rules, symbol = await market_of_params(state, params)
    order_id = await _find(state, principal.user_id, rules.name, params)
    order = await stored_order(state.db, principal.user_id, rules.name, order_id)
    if order is None:
        raise bad(NO_SUCH_ORDER, "Order does not exist.")
    return json_response(render.queried_order(rules, symbol, order))


@router.delete("/order")
async def cancel_order(request: Request, state: State) -> JSONResponse:
    principal, params = await signed(request, state, "trade")
    params.only("symbol", "orderId", "origClientOrderId", "newClientOrderId", "cancelRestrictions")
    _, rules, symbol = await market_of_params(state, params)
    try:
        order_id = await _find(state, principal.user_id, rules.name, params)
    except BinanceError as error:
        if error.code == NO_SUCH_ORDER:
            raise bad(CANCEL_REJECTED, "Unknown order sent.") from error
        raise
    try:
        status, canceled = await service.cancel(state, principal.user_id, order_id)
    except ApiError as error:
        raise translate(error) from error
    if status == 202:
        raise backend_timeout(placing=False)
    stored = await stored_order(state.db, principal.user_id, rules.name, order_id)
    return json_response(
        canceled_report(rules, symbol, order_id, stored, canceled.filled_quantity or "0")
    )


@router.delete("/openOrders")
async def cancel_open_orders(request: Request, state: State) -> JSONResponse:
    """CancelAll: every open order of the user in the market, including any dbproc has not
    stored yet (api.services.orders.cancel_all)."""
    principal, params = await signed(request, state, "trade")
    params.only("symbol")
    _, rules, symbol = await market_of_params(state, params)
    user = principal.user_id
    open_orders = await bqueries.orders(state.db, user, rules.name, open_only=True)
    if not open_orders:
        raise bad(CANCEL_REJECTED, "Unknown order sent.")
    stored = {order.order_id: order for order in open_orders}
    try:
        events = await service.cancel_all(state, user, rules.name, list(stored))
    except ApiError as error:
        raise translate(error) from error
    if events is None:
        # No reply names a stored order: they may all have ended before the cancel (the
        # stored state lags the engine); then there was nothing to cancel.
        if not await bqueries.orders(state.db, user, rules.name, open_only=True):
            raise bad(CANCEL_REJECTED, "Unknown order sent.")
        raise backend_timeout(placing=False)
    return json_response(
        [
            canceled_report(
                rules, symbol, event.order_id, stored.get(event.order_id),
                format_units(event.filled_qty, rules.lot),
            )
            for event in events
            if isinstance(event, OrderDone)
        ]
    )  # fmt: skip


@router.get("/openOrders")
async def open_orders(request: Request, state: State) -> JSONResponse:
    principal, params = await signed(request, state, "read")
    params.only("symbol")
    everything = await by_symbol(state.registry)
    symbol = params.text("symbol")
    if symbol is not None and symbol not in everything:
        raise invalid_symbol()
    market = everything[symbol].name if symbol else None
    orders = await bqueries.orders(state.db, principal.user_id, market, open_only=True)
    return json_response(await _rendered(state, orders))


async def _rendered(state: AppState, orders: list[OrderOut]) -> list[dict[str, Any]]:
    markets = await state.registry.all()
    # Each market's rules and symbol made once, not once per order (a bot may have hundreds).
    named = {
        name: (markets[name].rules(), symbol_of(markets[name]))
        for name in markets.keys() & {o.market for o in orders}
    }
    return [
        render.queried_order(*named[order.market], order)
        for order in orders
        if order.market in named
    ]


@router.get("/allOrders")
async def all_orders(request: Request, state: State) -> JSONResponse:
    principal, params = await signed(request, state, "read")
    params.only("symbol", "orderId", "startTime", "endTime", "limit")
    _, rules, _ = await market_of_params(state, params)
    number = params.text("orderId")
    orders = await bqueries.orders(
        state.db,
        principal.user_id,
        rules.name,
        open_only=False,
        since_order=order_id_of(rules.name, parse_order_number(number)) if number else None,
        start=_time(params, "startTime"),
        end=_time(params, "endTime"),
        limit=query_limit(params, 500, 1000),
    )
    return json_response(await _rendered(state, orders))


@router.get("/myTrades")
async def my_trades(request: Request, state: State) -> JSONResponse:
    principal, params = await signed(request, state, "read")
    params.only("symbol", "orderId", "startTime", "endTime", "fromId", "limit")
    _, rules, symbol = await market_of_params(state, params)
    number = params.text("orderId")
    rows = await bqueries.user_trades(
        state.db,
        principal.user_id,
        rules.name,
        order_id=order_id_of(rules.name, parse_order_number(number)) if number else None,
        from_id=params.integer("fromId"),
        start=_time(params, "startTime"),
        end=_time(params, "endTime"),
        limit=query_limit(params, 500, 1000),
    )
    return json_response(
        [
            {
                "symbol": symbol,
                "id": fill.trade_id,
                "orderId": number_of(order_id),
                "orderListId": -1,
                "price": fill.price,
                "qty": fill.quantity,
                "quoteQty": fill.quote_quantity,
                "commission": fill.fee,
                "commissionAsset": fill.fee_asset,
                "time": int(ts.timestamp() * 1000),
                "isBuyer": (taker_side == BUY) == (fill.liquidity == "taker"),
                "isMaker": fill.liquidity == "maker",
                "isBestMatch": True,
            }
            for fill, order_id, ts, taker_side in rows
        ]
    )
