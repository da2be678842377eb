"""Our markets, orders and fills as Binance's JSON: every amount a decimal string."""

import time
from decimal import Decimal
from typing import Any

import orjson
from fastapi.responses import JSONResponse

from api.binance.symbols import number_of, symbol_of
from api.models import FillOut, OrderOut
from api.services.order_plans import WAITING
from xch.market import Market, MarketRules, Trading
from xch.money import MAX_UNITS, format_minor, format_units
from xch.order_lists import list_number
from xch.schemas import (
    CANCELED,
    EXPIRED,
    FILLED,
    MARKET,
    POST_ONLY,
    REASON_SELF_TRADE,
    STOP_LOSS,
    STOP_TYPES,
    STP_MODES,
    TAKE_PROFIT,
    ResultCode,
)

STATUS = {Trading.ENABLED: "TRADING", Trading.CANCEL_ONLY: "BREAK", Trading.HALTED: "HALT"}
ORDER_TYPES = [
    "LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
]  # fmt: skip
STOP_ORDER_TYPES = {kind.upper(): kind for kind in STOP_TYPES}
"""Binance's stop order types and ours."""
FOK_UNFILLABLE = ResultCode.FOK_UNFILLABLE.reason
_ORDER_STATUS = {
    "new": "NEW",
    "partially_filled": "PARTIALLY_FILLED",
    FILLED: "FILLED",
    CANCELED: "CANCELED",
    EXPIRED: "EXPIRED",
    "rejected": "REJECTED",
    WAITING: "NEW",
}


def symbol_info(market: Market) -> dict[str, Any]:
    rules = market.rules()
    spec = market.spec
    max_qty = format_units(MAX_UNITS // rules.base_per_lot, rules.lot)
    max_notional = format_minor(MAX_UNITS, rules.quote_scale)
    return {
        "symbol": symbol_of(market),
        "status": STATUS[spec.trading],
        "baseAsset": rules.base,
        "baseAssetPrecision": rules.base_scale,
        "quoteAsset": rules.quote,
        "quotePrecision": rules.quote_scale,
        "quoteAssetPrecision": rules.quote_scale,
        "baseCommissionPrecision": rules.base_scale,
        "quoteCommissionPrecision": rules.quote_scale,
        "orderTypes": ORDER_TYPES,
        "icebergAllowed": False,
        "ocoAllowed": True,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "amendAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            # maxPrice 0: no upper bound (filters.md), beyond the 64-bit balance limit.
            {
                "filterType": "PRICE_FILTER",
                "minPrice": spec.tick_size,
                "maxPrice": "0",
                "tickSize": spec.tick_size,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": spec.lot_size,
                "maxQty": max_qty,
                "stepSize": spec.lot_size,
            },
            {
                "filterType": "MIN_NOTIONAL",
                "minNotional": spec.min_notional,
                "applyToMarket": False,
                "avgPriceMins": 0,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": spec.min_notional,
                "applyMinToMarket": False,
                "maxNotional": max_notional,
                "applyMaxToMarket": False,
                "avgPriceMins": 0,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": list(STP_MODES),
    }


def order_type(order: OrderOut) -> str:
    if order.type == MARKET or order.type in STOP_TYPES:
        return order.type.upper()
    return "LIMIT_MAKER" if order.tif == POST_ONLY else "LIMIT"


def order_list_id(list_id: str | None) -> int:
    """Binance's `orderListId` of an order in `list_id`, -1 for an order in no list."""
    return list_number(list_id) if list_id else -1


def is_working(order: OrderOut) -> bool:
    """On the book (Binance's `isWorking`): false for a stop order not triggered yet."""
    return not order.stop_price or order.triggered_at is not None


def order_status(order: OrderOut) -> str:
    if order.status == EXPIRED and order.reason == REASON_SELF_TRADE:
        return "EXPIRED_IN_MATCH"
    if order.reason == FOK_UNFILLABLE:
        return "EXPIRED"  # Binance answers an unfillable FOK as expired, not as refused
    return _ORDER_STATUS.get(order.status, order.status.upper())


def _time_in_force(order: OrderOut) -> str:
    if order.tif in (None, POST_ONLY) or order.type in (MARKET, STOP_LOSS, TAKE_PROFIT):
        return "GTC"
    return order.tif


def order_result(rules: MarketRules, symbol: str, order: OrderOut) -> dict[str, Any]:
    """The fields an order has in every answer past ACK (RESULT, queries, cancels)."""
    out = {
        "symbol": symbol,
        "orderId": number_of(order.order_id),
        "orderListId": order_list_id(order.list_id),
        "clientOrderId": order.client_order_id or "",
        "price": order.price or format_units(0, rules.tick),
        "origQty": order.quantity or format_units(0, rules.lot),
        "executedQty": order.filled_quantity,
        "origQuoteOrderQty": order.quote_quantity or format_minor(0, rules.quote_scale),
        "cummulativeQuoteQty": order.filled_quote,
        "status": order_status(order),
        "timeInForce": _time_in_force(order),
        "type": order_type(order),
        "side": order.side.upper(),
        "selfTradePreventionMode": order.stp or "EXPIRE_MAKER",
    }
    if order.stop_price:
        out["stopPrice"] = order.stop_price
    return out


def queried_order(rules: MarketRules, symbol: str, order: OrderOut) -> dict[str, Any]:
    """GET /api/v3/order and the order lists: stored orders."""
    created = order.created_at or 0
    working = is_working(order)
    return {
        **order_result(rules, symbol, order),
        "stopPrice": order.stop_price or format_units(0, rules.tick),
        "icebergQty": format_units(0, rules.lot),
        "time": created,
        "updateTime": order.triggered_at or created,
        "isWorking": working,
        "workingTime": (order.triggered_at or created) if working else -1,
    }


def fill(fill: FillOut) -> dict[str, Any]:
    return {
        "price": fill.price,
        "qty": fill.quantity,
        "commission": fill.fee,
        "commissionAsset": fill.fee_asset,
        "tradeId": fill.trade_id,
    }


def fee_rate(bps: int) -> str:
    """A fee in basis points as Binance writes a rate: 10 -> "0.00100000"."""
    return f"{Decimal(bps).scaleb(-4):.8f}"


def now_ms() -> int:
    return int(time.time() * 1000)


class _Json(JSONResponse):
    """Starlette's JSONResponse (the same bytes for what Binance's answers hold: strings,
    integers up to 2**64 - 1, booleans, null), encoded by orjson, several times faster than
    the standard library's encoder."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def json_response(value: Any) -> JSONResponse:
    return _Json(value)


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
    out = order_result(rules, symbol, order)
    return {"origClientOrderId": out["clientOrderId"], **out, "transactTime": now_ms()}
