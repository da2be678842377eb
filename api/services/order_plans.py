"""From an order request to an engine command (every check the engine would make, so a bad
request never reaches it), and from the engine's reply back to an order."""

import secrets
from dataclasses import dataclass

import msgspec

from api.errors import ApiError, from_result_code
from api.models import FillOut, OrderIn, OrderOut, QuoteIn, QuoteOut
from ledger.locks import cost_to_buy, lock_amount, spent_asset
from runtime.redis_pipe import PipelinedRedis
from xch import keys
from xch.market import MarketRules
from xch.marketdata import DepthValue, Levels, decode_depth
from xch.money import MAX_UNITS, AmountError, format_minor, format_units
from xch.schemas import (
    BUY,
    FOK,
    LIMIT,
    MARKET,
    POST_ONLY,
    STOP_LIMIT_TYPES,
    STOP_TYPES,
    Event,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderTriggered,
    Place,
    Trade,
)


@dataclass(frozen=True, slots=True)
class Planned:
    command: Place
    asset: str
    lock: int


ORDER_ID_SEPARATOR = "."
WAITING = "waiting"
"""The status of a stop order whose stop price has not been reached yet."""


def new_order_id(market: str) -> str:
    """`{market}.{random}`: the id routes a cancel or a lookup to its market without asking
    anyone (market names are DNS labels: they never contain a dot)."""
    return f"{market}{ORDER_ID_SEPARATOR}{secrets.token_hex(8)}"


def market_of(order_id: str) -> str | None:
    market, separator, rest = order_id.partition(ORDER_ID_SEPARATOR)
    return market if separator and market and rest else None


def _bad(code: str, message: str) -> ApiError:
    return ApiError(400, code, message)


def _ticks(rules: MarketRules, text: str) -> int:
    try:
        ticks = rules.price_to_ticks(text)
    except AmountError as error:
        raise _bad("invalid_price", f"price must be a positive multiple of {rules.tick}") from error
    if ticks <= 0:
        raise _bad("invalid_price", "price must be positive")
    return ticks


def _lots(rules: MarketRules, text: str) -> int:
    try:
        lots = rules.qty_to_lots(text)
    except AmountError as error:
        raise _bad("invalid_qty", f"quantity must be a positive multiple of {rules.lot}") from error
    if lots <= 0:
        raise _bad("invalid_qty", "quantity must be positive")
    return lots


def _quote(rules: MarketRules, text: str) -> int:
    try:
        amount = rules.quote_to_minor(text)
    except AmountError as error:
        raise _bad(
            "invalid_qty", f"quote_quantity has more than {rules.quote_scale} decimals"
        ) from error
    if amount <= 0:
        raise _bad("invalid_qty", "quote_quantity must be positive")
    return amount


def _fits(amount: int) -> int:
    if amount > MAX_UNITS:
        raise _bad("amount_too_large", "the order's value is too large")
    return amount


def _min_notional(rules: MarketRules, value: int) -> None:
    if value < rules.min_notional:
        raise _bad(
            "below_min_notional",
            f"the order's value is below {format_minor(rules.min_notional, rules.quote_scale)}",
        )


def _stop_ticks(rules: MarketRules, body: OrderIn) -> int:
    """The stop price of a stop order; refused on any other type, and missing on a stop."""
    if body.type not in STOP_TYPES:
        if body.stop_price is not None:
            raise _bad("invalid_stop_price", "stop_price is for the stop order types only")
        return 0
    if body.stop_price is None:
        raise _bad("invalid_stop_price", f"a {body.type} order needs stop_price")
    try:
        ticks = rules.price_to_ticks(body.stop_price)
    except AmountError as error:
        raise _bad(
            "invalid_stop_price", f"stop_price must be a positive multiple of {rules.tick}"
        ) from error
    if ticks <= 0:
        raise _bad("invalid_stop_price", "stop_price must be positive")
    return ticks


def executes_as(order_type: str) -> str:
    """What an order executes as: a stop-limit as a limit order, a stop-market as a market
    order, once triggered."""
    return LIMIT if order_type == LIMIT or order_type in STOP_LIMIT_TYPES else MARKET


def plan(
    rules: MarketRules, body: OrderIn, user: str, order_id: str, asks: Levels | None
) -> Planned:
    """The command and its lock; ApiError for anything the engine would refuse by the request
    alone. `asks` (the current depth) is needed only for a market buy by quantity. A stop
    order is checked as the order it becomes, plus its stop price."""
    stop_price = _stop_ticks(rules, body)
    price = qty = quote_qty = 0
    if executes_as(body.type) == LIMIT:
        if body.price is None or body.quantity is None or body.quote_quantity is not None:
            raise _bad("invalid_command", f"a {body.type} order needs price and quantity, only")
        price, qty = _ticks(rules, body.price), _lots(rules, body.quantity)
        notional = _fits(price * qty * rules.quote_per_tick_lot)
        _min_notional(rules, notional)
    else:
        if body.price is not None or (body.quantity is None) == (body.quote_quantity is None):
            raise _bad(
                "invalid_command", f"a {body.type} order needs quantity or quote_quantity, no price"
            )
        if body.tif == POST_ONLY:
            raise _bad("invalid_command", f"a {body.type} order cannot be post-only")
        if body.quote_quantity is not None:
            if body.side != BUY or body.tif == FOK:
                raise _bad("invalid_command", "quote_quantity is for GTC or IOC buys only")
            quote_qty = _quote(rules, body.quote_quantity)
            _min_notional(rules, quote_qty)
        else:
            assert body.quantity is not None
            qty = _lots(rules, body.quantity)
            if stop_price:
                # A stop-market by quantity has a price to check: its stop price.
                _min_notional(rules, _fits(stop_price * qty * rules.quote_per_tick_lot))
    command = Place(
        order_id=order_id,
        user=user,
        side=body.side,
        type=body.type,
        price=price,
        qty=qty,
        quote_qty=quote_qty,
        tif=body.tif,
        stp=body.stp,
        locked=0,
        client_order_id=body.client_order_id or "",
        stop_price=stop_price,
    )
    if body.type == MARKET and body.side == BUY and qty:
        lock = _fits(cost_to_buy(rules, qty, asks or []))
    else:
        lock = _fits(lock_amount(rules, command))
    return Planned(
        msgspec.structs.replace(command, locked=lock), spent_asset(rules, body.side), lock
    )


# ---- depth ------------------------------------------------------------------------------


async def read_depth(pipe: PipelinedRedis, market: str) -> DepthValue:
    """The engine's committed depth (`xch:{M}:depth`); empty before its first commit."""
    raw: bytes | None = await pipe.execute("GET", keys.market_depth(market))
    return decode_depth(raw)


def _walk(
    rules: MarketRules, levels: Levels, want: int | None, budget: int | None
) -> tuple[int, int, int | None, bool]:
    """(lots, cost, worst price, complete) of taking `want` lots, or what `budget` buys, from
    `levels` best first."""
    lots = cost = 0
    worst: int | None = None
    for price, total in levels:
        unit = price * rules.quote_per_tick_lot
        room = want - lots if want is not None else (budget or 0) - cost
        take = min(room if want is not None else room // unit, total)
        if take <= 0:
            # Only a budget that cannot buy one more lot stops here: it is used up.
            return lots, cost, worst, True
        lots, cost, worst = lots + take, cost + take * unit, price
    return lots, cost, worst, want is not None and lots == want


def quote(rules: MarketRules, body: QuoteIn, depth: DepthValue) -> QuoteOut:
    """What a market order would fill at against `depth` as it stands."""
    if (body.quantity is None) == (body.quote_quantity is None):
        raise _bad("invalid_command", "give quantity or quote_quantity")
    if body.quote_quantity is not None and body.side != BUY:
        raise _bad("invalid_command", "quote_quantity is for buys only")
    want = _lots(rules, body.quantity) if body.quantity is not None else None
    budget = _quote(rules, body.quote_quantity) if body.quote_quantity is not None else None
    levels = depth.asks if body.side == BUY else depth.bids
    lots, cost, worst, complete = _walk(rules, levels, want, budget)
    average = None
    if lots:
        # Rounded down to the tick: an indication, the fills themselves are exact.
        average = format_units(cost // (lots * rules.quote_per_tick_lot), rules.tick)
    return QuoteOut(
        market=rules.name,
        side=body.side,
        quantity=format_units(lots, rules.lot),
        quote_quantity=format_minor(cost, rules.quote_scale),
        average_price=average,
        worst_price=None if worst is None else format_units(worst, rules.tick),
        complete=complete,
    )


# ---- replies ----------------------------------------------------------------------------


def _fill(rules: MarketRules, trade: Trade, taker: bool) -> FillOut:
    buyer = (trade.taker_side == BUY) == taker
    fee = trade.taker_fee if taker else trade.maker_fee
    return FillOut(
        trade_id=trade.trade_id,
        price=format_units(trade.price, rules.tick),
        quantity=format_units(trade.qty, rules.lot),
        quote_quantity=format_minor(trade.quote_qty, rules.quote_scale),
        fee=format_minor(fee, rules.base_scale if buyer else rules.quote_scale),
        fee_asset=rules.base if buyer else rules.quote,
        liquidity="taker" if taker else "maker",
    )


def placed_order(rules: MarketRules, order_id: str, events: list[Event]) -> OrderOut:
    """The order as the engine's reply to its place command leaves it; ApiError if refused."""
    accepted: OrderAccepted | None = None
    fills: list[FillOut] = []
    lots = quote_total = 0
    done: OrderDone | None = None
    triggered_at: int | None = None
    for event in events:
        if isinstance(event, OrderRejected) and event.order_id == order_id:
            raise_rejection(event)
        elif isinstance(event, OrderAccepted) and event.order_id == order_id:
            accepted = event
        elif isinstance(event, Trade) and event.taker_order == order_id:
            fills.append(_fill(rules, event, taker=True))
            lots, quote_total = lots + event.qty, quote_total + event.quote_qty
        elif isinstance(event, OrderTriggered) and event.order_id == order_id:
            triggered_at = event.ts
        elif isinstance(event, OrderDone) and event.order_id == order_id:
            done = event
    if accepted is None:
        raise ApiError(502, "engine_error", "the engine's reply did not mention the order")
    if done:
        status = done.status
    elif lots:
        status = "partially_filled"
    else:
        status = WAITING if accepted.stop_price and triggered_at is None else "new"
    return OrderOut(
        order_id=order_id,
        client_order_id=accepted.client_order_id or None,
        market=rules.name,
        side=accepted.side,
        type=accepted.type,
        tif=accepted.tif,
        stp=accepted.stp,
        price=format_units(accepted.price, rules.tick) if accepted.price else None,
        quantity=format_units(accepted.qty, rules.lot) if accepted.qty else None,
        quote_quantity=(
            format_minor(accepted.quote_qty, rules.quote_scale) if accepted.quote_qty else None
        ),
        status=status,
        reason=(done.reason or None) if done else None,
        filled_quantity=format_units(lots, rules.lot),
        filled_quote=format_minor(quote_total, rules.quote_scale),
        created_at=accepted.ts,
        fills=fills,
        stop_price=(format_units(accepted.stop_price, rules.tick) if accepted.stop_price else None),
        list_id=accepted.list_id or None,
        triggered_at=triggered_at,
    )


def raise_rejection(event: OrderRejected) -> None:
    raise from_result_code(event.code)
