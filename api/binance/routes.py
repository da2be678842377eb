"""The /api/v3 routes. Parameters come from the query string or the form body, as Binance
clients send them; signed routes check the key, timestamp and signature first
(api.binance.params). Placing and canceling go through the native api's code paths."""

import asyncio
import contextlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
import redis.exceptions
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from api.binance import queries as bqueries
from api.binance import render
from api.binance.errors import (
    CANCEL_REJECTED,
    INVALID_INTERVAL,
    INVALID_ORDER_TYPE,
    INVALID_SIDE,
    INVALID_TIF,
    NO_SUCH_ORDER,
    PARAM_NOT_REQUIRED,
    BinanceError,
    backend_timeout,
    bad,
    illegal,
    invalid_symbol,
    missing,
    translate,
)
from api.binance.params import Params, keyed, read_params, signed
from api.binance.symbols import (
    by_symbol,
    market_of_symbol,
    next_order_id,
    number_of,
    order_id_of,
    parse_order_number,
    symbol_of,
)
from api.deps import State, limit_ip
from api.errors import ApiError
from api.idempotency import claim_key
from api.models import ClientOrderId, OrderIn, OrderOut
from api.orders import plan, read_depth
from api.queries import order as stored_order
from api.queries import trades as stored_trades
from api.routes.accounts import LISTEN_KEY_TTL
from api.routes.funds import balances
from api.routes.orders import cancel, place
from api.state import AppState
from storage.klines import fetch_klines, utc_from_ms
from xch import keys
from xch.market import Market, MarketRules
from xch.marketdata import decode_ticker, interval_seconds
from xch.money import format_decimal, format_minor, format_units
from xch.schemas import BUY, LIMIT, POST_ONLY, STP_MODES, CancelAll, OrderDone
from xch.wire import as_text

router = APIRouter(prefix="/api/v3", include_in_schema=False)
public = [Depends(limit_ip)]

MAX_MS = 253_402_300_799_999
DEPTH_LIMIT = 5000
AVG_PRICE_MINUTES = 5
_SIDES = {"BUY": "buy", "SELL": "sell"}
_TIFS = ("GTC", "IOC", "FOK")
_RESP_TYPES = ("ACK", "RESULT", "FULL")
ClientOrderIdCheck: TypeAdapter[str] = TypeAdapter(ClientOrderId)


def now_ms() -> int:
    return int(time.time() * 1000)


def json_response(value: Any) -> JSONResponse:
    return JSONResponse(value)


async def market_of_params(state: AppState, params: Params) -> tuple[Market, MarketRules, str]:
    symbol = params.required("symbol")
    market = await market_of_symbol(state.registry, symbol)
    return market, market.rules(), symbol


async def _symbols(state: AppState, params: Params) -> list[Market]:
    """The markets `symbol` or `symbols` (a JSON array) name, or every market."""
    everything = await by_symbol(state.registry)
    one, many = params.text("symbol"), params.text("symbols")
    if one is not None and many is not None:
        raise bad(-1128, "Combination of optional parameters invalid.")
    if one is not None:
        if one not in everything:
            raise invalid_symbol()
        return [everything[one]]
    if many is None:
        return list(everything.values())
    try:
        names = orjson.loads(many)
    except orjson.JSONDecodeError as error:
        raise illegal("symbols") from error
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not names:
        raise illegal("symbols")
    if any(name not in everything for name in names):
        raise invalid_symbol()
    return [everything[name] for name in dict.fromkeys(names)]


def _time(params: Params, name: str) -> datetime | None:
    value = params.integer(name, high=MAX_MS)
    return None if value is None else utc_from_ms(value)


def query_limit(params: Params, default: int, high: int) -> int:
    value = params.integer("limit", default)
    assert value is not None
    if not 1 <= value <= high:
        raise illegal("limit")
    return value


# ---- general and market data ------------------------------------------------------------


@router.get("/ping", dependencies=public)
async def ping() -> dict[str, Any]:
    return {}


@router.get("/time", dependencies=public)
async def server_time() -> dict[str, Any]:
    return {"serverTime": now_ms()}


@router.get("/exchangeInfo", dependencies=public)
async def exchange_info(request: Request, state: State) -> JSONResponse:
    params = await read_params(request)
    params.only("symbol", "symbols", "permissions", "showPermissionSets", "symbolStatus")
    chosen = await _symbols(state, params)
    settings = state.settings
    return json_response(
        {
            "timezone": "UTC",
            "serverTime": now_ms(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "SECOND",
                    "intervalNum": settings.rate_limit_window_seconds,
                    "limit": settings.rate_limit_ip,
                },
                {
                    "rateLimitType": "ORDERS",
                    "interval": "SECOND",
                    "intervalNum": settings.rate_limit_window_seconds,
                    "limit": settings.rate_limit_user,
                },
            ],
            "exchangeFilters": [],
            "symbols": [render.symbol_info(market) for market in chosen],
        }
    )


@router.get("/depth", dependencies=public)
async def depth(request: Request, state: State) -> JSONResponse:
    params = await read_params(request)
    params.only("symbol", "limit")
    _, rules, _ = await market_of_params(state, params)
    limit = query_limit(params, 100, DEPTH_LIMIT)
    value = await read_depth(state.redis, rules.name)

    def levels(side: list[tuple[int, int]]) -> list[list[str]]:
        return [
            [format_units(price, rules.tick), format_units(lots, rules.lot)]
            for price, lots in side[:limit]
        ]

    return json_response(
        {
            "lastUpdateId": value.last_update_id,
            "bids": levels(value.bids),
            "asks": levels(value.asks),
        }
    )


@router.get("/trades", dependencies=public)
async def recent_trades(request: Request, state: State) -> JSONResponse:
    params = await read_params(request)
    params.only("symbol", "limit")
    _, rules, _ = await market_of_params(state, params)
    rows = await stored_trades(state.db, rules.name, query_limit(params, 500, 1000))
    return json_response(
        [
            {
                "id": trade.trade_id,
                "price": trade.price,
                "qty": trade.quantity,
                "quoteQty": trade.quote_quantity,
                "time": trade.time,
                "isBuyerMaker": trade.taker_side != BUY,
                "isBestMatch": True,
            }
            for trade in reversed(rows)
        ]
    )


@router.get("/klines", dependencies=public)
async def klines(request: Request, state: State) -> JSONResponse:
    params = await read_params(request)
    params.only("symbol", "interval", "startTime", "endTime", "limit", "timeZone")
    market, rules, _ = await market_of_params(state, params)
    interval = params.required("interval")
    if interval not in market.spec.klines.intervals:
        raise bad(INVALID_INTERVAL, "Invalid interval.")
    if params.text("timeZone") not in (None, "0", "+00:00", "0:00"):
        raise bad(-1130, "Invalid data sent for a parameter: timeZone (only UTC is served).")
    limit = query_limit(params, 500, 1000)
    length = interval_seconds(interval) * 1000
    start, end = params.integer("startTime", high=MAX_MS), params.integer("endTime", high=MAX_MS)
    end_ms = end if end is not None else now_ms()
    start_ms = start if start is not None else max(0, end_ms - limit * length)
    if start_ms > end_ms:
        raise bad(-1128, "Combination of optional parameters invalid.")
    try:
        async with state.db.acquire() as conn:
            rows = await fetch_klines(
                conn, rules.name, interval, utc_from_ms(start_ms), utc_from_ms(end_ms + 1), limit
            )
    except asyncpg.UndefinedTableError:
        rows = []
    return json_response(
        [
            [
                k.open_time,
                k.open,
                k.high,
                k.low,
                k.close,
                k.volume,
                k.close_time,
                k.quote_volume,
                k.count,
                "0",
                "0",
                "0",
            ]
            for k in rows
        ]
    )


async def _ticker(state: AppState, market: Market, full: bool) -> dict[str, Any]:
    rules = market.rules()
    raw = await state.redis.get(keys.market_ticker(rules.name))
    now = now_ms()
    zero_price, zero_qty = format_units(0, rules.tick), format_units(0, rules.lot)
    out: dict[str, Any] = {"symbol": symbol_of(market)}
    stats: dict[str, Any]
    if raw is None:
        stats = {
            "open": zero_price, "high": zero_price, "low": zero_price, "last": zero_price,
            "volume": zero_qty, "quote_volume": "0", "open_time": now - 86_400_000,
            "close_time": now, "count": 0, "price_change": "0", "price_change_percent": "0",
        }  # fmt: skip
    else:
        ticker = decode_ticker(raw)
        stats = {
            "open": ticker.open, "high": ticker.high, "low": ticker.low, "last": ticker.last,
            "volume": ticker.volume, "quote_volume": ticker.quote_volume,
            "open_time": ticker.open_time, "close_time": ticker.close_time,
            "count": ticker.count, "price_change": ticker.price_change,
            "price_change_percent": ticker.price_change_percent,
        }  # fmt: skip
    volume, quote_volume = Decimal(stats["volume"]), Decimal(stats["quote_volume"])
    average = (quote_volume / volume).quantize(rules.tick) if volume else Decimal(0)
    first, last = (-1, -1)
    if stats["count"]:
        first, last = await bqueries.trade_ids(
            state.db, rules.name, utc_from_ms(stats["open_time"])
        )
    if full:
        value = await read_depth(state.redis, rules.name)
        bid = value.bids[0] if value.bids else (0, 0)
        ask = value.asks[0] if value.asks else (0, 0)
        out |= {
            "priceChange": stats["price_change"],
            "priceChangePercent": stats["price_change_percent"],
            "weightedAvgPrice": format_decimal(average),
            "prevClosePrice": stats["open"],
            "lastPrice": stats["last"],
            "lastQty": zero_qty,
            "bidPrice": format_units(bid[0], rules.tick),
            "bidQty": format_units(bid[1], rules.lot),
            "askPrice": format_units(ask[0], rules.tick),
            "askQty": format_units(ask[1], rules.lot),
        }
        last_trade = await bqueries.last_trade(state.db, rules.name)
        if last_trade is not None and stats["count"]:
            out["lastQty"] = format_decimal(last_trade[1])
    else:
        out["lastPrice"] = stats["last"]
    return out | {
        "openPrice": stats["open"],
        "highPrice": stats["high"],
        "lowPrice": stats["low"],
        **({} if full else {"lastPrice": stats["last"]}),
        "volume": stats["volume"],
        "quoteVolume": stats["quote_volume"],
        "openTime": stats["open_time"],
        "closeTime": stats["close_time"],
        "firstId": first,
        "lastId": last,
        "count": stats["count"],
    }


@router.get("/ticker/24hr", dependencies=public)
async def ticker_24hr(request: Request, state: State) -> JSONResponse:
    params = await read_params(request)
    params.only("symbol", "symbols", "type")
    kind = params.text("type") or "FULL"
    if kind not in ("FULL", "MINI"):
        raise illegal("type")
    chosen = await _symbols(state, params)
    tickers = [await _ticker(state, market, kind == "FULL") for market in chosen]
    return json_response(tickers[0] if params.text("symbol") else tickers)


@router.get("/ticker/price", dependencies=public)
async def ticker_price(request: Request, state: State) -> JSONResponse:
    params = await read_params(request)
    params.only("symbol", "symbols")
    chosen = await _symbols(state, params)
    out = []
    for market in chosen:
        rules = market.rules()
        last = await bqueries.last_trade(state.db, rules.name)
        price = format_decimal(last[0]) if last else format_units(0, rules.tick)
        out.append({"symbol": symbol_of(market), "price": price})
    return json_response(out[0] if params.text("symbol") else out)


@router.get("/ticker/bookTicker", dependencies=public)
async def book_ticker(request: Request, state: State) -> JSONResponse:
    params = await read_params(request)
    params.only("symbol", "symbols")
    chosen = await _symbols(state, params)
    out = []
    for market in chosen:
        rules = market.rules()
        value = await read_depth(state.redis, rules.name)
        bid = value.bids[0] if value.bids else (0, 0)
        ask = value.asks[0] if value.asks else (0, 0)
        out.append(
            {
                "symbol": symbol_of(market),
                "bidPrice": format_units(bid[0], rules.tick),
                "bidQty": format_units(bid[1], rules.lot),
                "askPrice": format_units(ask[0], rules.tick),
                "askQty": format_units(ask[1], rules.lot),
            }
        )
    return json_response(out[0] if params.text("symbol") else out)


@router.get("/avgPrice", dependencies=public)
async def avg_price(request: Request, state: State) -> JSONResponse:
    """The volume-weighted price of the last 5 minutes' trades (the last price without any)."""
    params = await read_params(request)
    params.only("symbol")
    _, rules, _ = await market_of_params(state, params)
    since = datetime.now(UTC) - timedelta(minutes=AVG_PRICE_MINUTES)
    quote, base, last_ts = await bqueries.average_price(state.db, rules.name, since)
    if base:
        price = format_decimal((quote / base).quantize(Decimal(1).scaleb(-rules.quote_scale)))
        close = int(last_ts.timestamp() * 1000) if last_ts else now_ms()
    else:
        last = await bqueries.last_trade(state.db, rules.name)
        price = format_decimal(last[0]) if last else format_units(0, rules.tick)
        close = int(last[2].timestamp() * 1000) if last else now_ms()
    return json_response({"mins": AVG_PRICE_MINUTES, "price": price, "closeTime": close})


# ---- orders -----------------------------------------------------------------------------

_ORDER_PARAMS = (
    "symbol", "side", "type", "timeInForce", "quantity", "quoteOrderQty", "price",
    "stopPrice", "newClientOrderId", "newOrderRespType", "selfTradePreventionMode",
    "computeCommissionRates",
)  # fmt: skip
_UNSUPPORTED = ("trailingDelta", "icebergQty", "strategyId", "strategyType")
_LIMIT_KINDS = ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")


def _not_required(name: str) -> BinanceError:
    return bad(PARAM_NOT_REQUIRED, f"Parameter '{name}' sent when not required.")


@dataclass(frozen=True, slots=True)
class Order:
    """One order's parameters as sent; `prefix` names them in an OCO list ("above", …)."""

    kind: str
    tif: str | None
    price: str | None
    quantity: str | None
    quote_quantity: str | None
    stop_price: str | None
    prefix: str = ""

    def name(self, field: str) -> str:
        return f"{self.prefix}{field[0].upper()}{field[1:]}" if self.prefix else field

    def native(self) -> tuple[str, str]:
        """(type, tif) of the native order; Binance's refusal of a missing, superfluous or
        invalid parameter for this order type."""
        kind, tif = self.kind, self.tif
        if kind in _LIMIT_KINDS:
            if tif is None:
                raise missing(self.name("timeInForce"))
            if tif not in _TIFS:
                raise bad(INVALID_TIF, "Invalid timeInForce.")
            if self.price is None:
                raise missing(self.name("price"))
        elif kind in ("LIMIT_MAKER", "MARKET", "STOP_LOSS", "TAKE_PROFIT"):
            if kind == "LIMIT_MAKER" and self.price is None:
                raise missing(self.name("price"))
            if kind != "LIMIT_MAKER" and self.price is not None:
                raise _not_required(self.name("price"))
            if kind == "MARKET":
                if tif is not None and tif not in _TIFS:
                    raise bad(INVALID_TIF, "Invalid timeInForce.")
            elif tif is not None:
                raise _not_required(self.name("timeInForce"))
        else:
            raise bad(INVALID_ORDER_TYPE, "Invalid orderType.")
        if kind == "MARKET":
            if (self.quantity is None) == (self.quote_quantity is None):
                raise bad(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but not both.")
        elif self.quantity is None:
            raise missing("quantity")
        elif self.quote_quantity is not None:
            raise _not_required("quoteOrderQty")
        stop = render.STOP_ORDER_TYPES.get(kind)
        if stop is not None and self.stop_price is None:
            raise missing(self.name("stopPrice"))
        if stop is None and self.stop_price is not None:
            raise _not_required(self.name("stopPrice"))
        if kind == "LIMIT_MAKER":
            return LIMIT, POST_ONLY
        return stop or kind.lower(), tif or "GTC"

    def order_in(self, market: str, side: str, stp: str, client_order_id: str) -> OrderIn:
        order_type, tif = self.native()
        names = {
            "price": self.name("price"),
            "stop_price": self.name("stopPrice"),
            "quote_quantity": "quoteOrderQty",
            "client_order_id": self.name("clientOrderId") if self.prefix else "newClientOrderId",
        }
        try:
            return OrderIn.model_validate(
                {
                    "market": market,
                    "side": side,
                    "type": order_type,
                    "price": self.price,
                    "quantity": self.quantity,
                    "quote_quantity": self.quote_quantity,
                    "stop_price": self.stop_price,
                    "tif": tif,
                    "stp": stp,
                    "client_order_id": client_order_id,
                }
            )
        except ValidationError as error:
            where = next((str(e["loc"][0]) for e in error.errors() if e.get("loc")), "parameter")
            raise illegal(names.get(where, where)) from error


def refuse_unsupported(params: Params, *names: str) -> None:
    for name in names:
        if params.text(name) is not None:
            raise _not_required(name)


def side_of(params: Params) -> str:
    side = _SIDES.get(params.required("side"))
    if side is None:
        raise bad(INVALID_SIDE, "Invalid side.")
    return side


def stp_of(params: Params) -> str:
    stp = params.text("selfTradePreventionMode") or "EXPIRE_MAKER"
    if stp not in STP_MODES:
        raise illegal("selfTradePreventionMode")
    return stp


def respond_type(params: Params, default: str) -> str:
    respond = params.text("newOrderRespType") or default
    if respond not in _RESP_TYPES:
        raise illegal("newOrderRespType")
    return respond


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


@router.post("/order")
async def new_order(request: Request, state: State) -> JSONResponse:
    principal, params = await signed(request, state, "trade")
    market, rules, symbol = await market_of_params(state, params)
    body = _order_in(market.name, params)
    kind = params.required("type")
    respond = respond_type(params, "FULL" if kind in ("LIMIT", "MARKET") else "ACK")
    order_id = await next_order_id(state.redis, market.name)
    try:
        status, order = await place(state, principal.user_id, body, order_id)
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
        rules = await state.registry.open_for_orders(market.name)
        asks = (await read_depth(state.redis, market.name)).asks
        plan(rules, body, principal.user_id, order_id_of(market.name, 1), asks)
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
    claimed = await state.redis.get(claim_key(user, client_id))
    if claimed is not None:
        order_id = str(orjson.loads(claimed)["order_id"])
        if order_id.startswith(f"{market}."):
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


def canceled_report(
    rules: MarketRules,
    symbol: str,
    order_id: str,
    stored: OrderOut | None,
    filled: str,
    list_id: str | None = None,
) -> dict[str, Any]:
    """A canceled order in Binance's answer; `list_id`: the OCO list it was canceled with."""
    order = stored or OrderOut(order_id=order_id, market=rules.name, side="", status="canceled")
    update: dict[str, Any] = {"status": "canceled", "filled_quantity": filled}
    if list_id is not None:
        update["list_id"] = list_id
    order = order.model_copy(update=update)
    out = render.order_result(rules, symbol, order)
    return {"origClientOrderId": out["clientOrderId"], **out, "transactTime": now_ms()}


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
        status, canceled = await cancel(state, principal.user_id, order_id)
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
    stored yet. The reply is recognized by the first order it ends, which the engine picks
    oldest first, so the stored open orders tell which replies to wait for."""
    principal, params = await signed(request, state, "trade")
    params.only("symbol")
    _, rules, symbol = await market_of_params(state, params)
    user = principal.user_id
    open_orders = await bqueries.orders(state.db, user, rules.name, open_only=True)
    if not open_orders:
        raise bad(CANCEL_REJECTED, "Unknown order sent.")
    stored = {order.order_id: order for order in open_orders}
    with contextlib.ExitStack() as stack:
        futures = [stack.enter_context(state.replies.expect("cancel", oid)) for oid in stored]
        try:
            await state.gateway.submit(rules.name, CancelAll(user=user), user)
        except redis.exceptions.ConnectionError as error:
            raise translate(ApiError(503, "outcome_unknown", str(error))) from error
        done, _ = await asyncio.wait(
            futures, timeout=state.settings.reply_timeout_seconds, return_when="FIRST_COMPLETED"
        )
    if not done:
        # No reply names a stored order: they may all have ended before the cancel (the
        # stored state lags the engine); then there was nothing to cancel.
        if not await bqueries.orders(state.db, user, rules.name, open_only=True):
            raise bad(CANCEL_REJECTED, "Unknown order sent.")
        raise backend_timeout(placing=False)
    events = next(iter(done)).result()
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
    out = []
    for order in orders:
        market = markets.get(order.market)
        if market is not None:
            out.append(render.queried_order(market.rules(), symbol_of(market), order))
    return out


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


@router.get("/account")
async def account(request: Request, state: State) -> JSONResponse:
    principal, params = await signed(request, state, "read")
    params.only("omitZeroBalances")
    held = await balances(principal, state)
    if params.text("omitZeroBalances") == "true":
        held = [b for b in held if Decimal(b.free) or Decimal(b.locked)]
    trade = "trade" in principal.scopes
    zero = "0.00000000"
    return json_response(
        {
            # Fees are per market (exchangeInfo has none): the account-level rates are 0.
            "makerCommission": 0,
            "takerCommission": 0,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": zero, "taker": zero, "buyer": zero, "seller": zero},
            "canTrade": trade,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": now_ms(),
            "accountType": "SPOT",
            "balances": [{"asset": b.asset, "free": b.free, "locked": b.locked} for b in held],
            "permissions": ["SPOT"],
            "uid": int(principal.user_id),
        }
    )


# ---- user data stream -------------------------------------------------------------------

LISTEN_KEY_BYTES = 30
"""A listen key is 60 hex digits, as long as Binance's."""


async def _own_listen_key(state: AppState, user: str, params: Params) -> str:
    key = params.required("listenKey")
    owner = await state.redis.get(keys.listen_key(key)) if key.isalnum() else None
    if owner is None or as_text(owner) != user:
        raise bad(-1125, "This listenKey does not exist.")
    return key


@router.post("/userDataStream")
async def new_listen_key(request: Request, state: State) -> JSONResponse:
    """A listen key for the user-data stream at ws `/ws/<listenKey>`: the native api's
    WebSocket listen key (`xch:listen:{key}`), valid for an hour unless kept alive."""
    user, params = await keyed(request, state)
    params.only()
    key = secrets.token_hex(LISTEN_KEY_BYTES)
    await state.redis.set(keys.listen_key(key), user, ex=LISTEN_KEY_TTL)
    return json_response({"listenKey": key})


@router.put("/userDataStream")
async def keep_listen_key(request: Request, state: State) -> JSONResponse:
    user, params = await keyed(request, state)
    params.only("listenKey")
    key = await _own_listen_key(state, user, params)
    await state.redis.expire(keys.listen_key(key), LISTEN_KEY_TTL)
    return json_response({})


@router.delete("/userDataStream")
async def close_listen_key(request: Request, state: State) -> JSONResponse:
    user, params = await keyed(request, state)
    params.only("listenKey")
    await state.redis.delete(keys.listen_key(await _own_listen_key(state, user, params)))
    return json_response({})
