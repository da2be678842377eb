"""Our markets, orders and fills as Binance's JSON: every amount a decimal string."""

from typing import Any

from api.binance.symbols import number_of, symbol_of
from api.models import FillOut, OrderOut
from xch.market import Market, MarketRules, Trading
from xch.money import MAX_UNITS, format_minor, format_units
from xch.schemas import (
    CANCELED,
    EXPIRED,
    FILLED,
    MARKET,
    POST_ONLY,
    REASON_SELF_TRADE,
    STP_MODES,
    ResultCode,
)

STATUS = {Trading.ENABLED: "TRADING", Trading.CANCEL_ONLY: "BREAK", Trading.HALTED: "HALT"}
ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET"]
FOK_UNFILLABLE = ResultCode.FOK_UNFILLABLE.reason
_ORDER_STATUS = {
    "new": "NEW",
    "partially_filled": "PARTIALLY_FILLED",
    FILLED: "FILLED",
    CANCELED: "CANCELED",
    EXPIRED: "EXPIRED",
    "rejected": "REJECTED",
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
        "ocoAllowed": False,
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
    if order.type == MARKET:
        return "MARKET"
    return "LIMIT_MAKER" if order.tif == POST_ONLY else "LIMIT"


def order_status(order: OrderOut) -> str:
    if order.status == EXPIRED and order.reason == REASON_SELF_TRADE:
        return "EXPIRED_IN_MATCH"
    if order.reason == FOK_UNFILLABLE:
        return "EXPIRED"  # Binance answers an unfillable FOK as expired, not as refused
    return _ORDER_STATUS.get(order.status, order.status.upper())


def _time_in_force(order: OrderOut) -> str:
    return "GTC" if order.tif in (None, POST_ONLY) or order.type == MARKET else order.tif


def order_result(rules: MarketRules, symbol: str, order: OrderOut) -> dict[str, Any]:
    """The fields an order has in every answer past ACK (RESULT, queries, cancels)."""
    return {
        "symbol": symbol,
        "orderId": number_of(order.order_id),
        "orderListId": -1,
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


def queried_order(rules: MarketRules, symbol: str, order: OrderOut) -> dict[str, Any]:
    """GET /api/v3/order and the order lists: stored orders."""
    created = order.created_at or 0
    return {
        **order_result(rules, symbol, order),
        "stopPrice": format_units(0, rules.tick),
        "icebergQty": format_units(0, rules.lot),
        "time": created,
        "updateTime": created,
        "isWorking": True,
        "workingTime": created,
    }


def fill(fill: FillOut) -> dict[str, Any]:
    return {
        "price": fill.price,
        "qty": fill.quantity,
        "commission": fill.fee,
        "commissionAsset": fill.fee_asset,
        "tradeId": fill.trade_id,
    }
