"""Orders: place, cancel, cancel all of a market, check without placing, quote. The native
and the Binance routes both call these; placing goes through api.services.submit."""

import asyncio
import contextlib
from typing import Any, ClassVar

import redis.exceptions

from api import queries
from api.errors import ApiError, from_result_code
from api.models import CancelOut, OrderIn, OrderOut, QuoteIn, QuoteOut
from api.replies import Op
from api.services import submit
from api.services.idempotency import ORDER_CLAIMS, Claims
from api.services.order_plans import (
    market_of,
    new_order_id,
    placed_order,
    plan,
    quote,
    read_depth,
)
from api.state import AppState
from xch.market import MarketRules
from xch.marketdata import Levels
from xch.money import format_units
from xch.schemas import BUY, MARKET, CancelAll, Event, OrderDone, OrderRejected, ResultCode


class OrderPlacement(submit.Placement[OrderOut]):
    """A single order, planned (ApiError for what the engine would refuse by the request)."""

    noun: ClassVar[str] = "order"
    too_large: ClassVar[str] = "the order's value is too large"
    client_id_name: ClassVar[str] = "client_order_id"
    claims: ClassVar[str] = ORDER_CLAIMS
    op: ClassVar[Op] = "place"

    def __init__(
        self, rules: MarketRules, body: OrderIn, user: str, order_id: str, asks: Levels | None
    ) -> None:
        planned = plan(rules, body, user, order_id, asks)
        super().__init__(
            body.market,
            order_id,
            body.client_order_id,
            planned.command,
            planned.asset,
            planned.lock,
        )
        self.rules = rules

    @property
    def reply_id(self) -> str:
        return self.id

    def pending(self, placement_id: str) -> OrderOut:
        return OrderOut(
            order_id=placement_id,
            client_order_id=self.client_id,
            market=market_of(placement_id) or self.market,
            side="",
            status="pending",
        )

    async def stored(self, state: AppState, user: str, placement_id: str) -> OrderOut | None:
        market = market_of(placement_id) or self.market
        return await queries.order(state.db, user, market, placement_id)

    def answer(self, events: list[Event]) -> OrderOut:
        return placed_order(self.rules, self.id, events)

    def recorded(self, body: dict[str, Any]) -> OrderOut:
        return OrderOut.model_validate(body)


async def place(
    state: AppState,
    user: str,
    body: OrderIn,
    order_id: str | None = None,
    claim_ttl_seconds: int | None = None,
    keep_answer: bool = True,
) -> tuple[int, OrderOut]:
    """Place an order and wait for the engine: (200, the order) or (202, pending); ApiError
    for a refusal. `order_id` is generated unless given (the Binance routes number theirs),
    and so is how long its client id stays claimed and whether with the answer
    (submit.place)."""
    rules = await state.registry.open_for_orders(body.market)
    asks = None
    if body.type == MARKET and body.side == BUY and body.quantity is not None:
        asks = (await read_depth(state.pipe, body.market)).asks
    placement = OrderPlacement(rules, body, user, order_id or new_order_id(body.market), asks)
    return await submit.place(state, user, placement, claim_ttl_seconds, keep_answer)


async def claimed_order_id(state: AppState, user: str, client_order_id: str) -> str | None:
    """The order a client_order_id names as soon as it is claimed (before dbproc stores it)."""
    claims = Claims(state.pipe, state.settings.client_order_id_ttl_seconds)
    return await claims.order_id(user, client_order_id)


async def check(state: AppState, user: str, body: OrderIn, order_id: str) -> None:
    """Every check placing makes before the engine, nothing placed; ApiError for a refusal."""
    rules = await state.registry.open_for_orders(body.market)
    asks = (await read_depth(state.pipe, body.market)).asks
    plan(rules, body, user, order_id, asks)


async def cancel(state: AppState, user: str, order_id: str) -> tuple[int, CancelOut]:
    """Cancel an order and wait for the engine: (200, canceled) or (202, pending); ApiError
    if the engine refuses (unknown order, another user's)."""
    market = market_of(order_id)
    if market is None:
        raise from_result_code(ResultCode.UNKNOWN_ORDER)
    await state.registry.get(market)
    events = await submit.cancel(state, market, user, order_id, "order")
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


async def cancel_all(
    state: AppState, user: str, market: str, open_orders: list[str]
) -> list[Event] | None:
    """Cancel every open order of the user in the market, including any dbproc has not
    stored yet: the engine's reply, None if it did not come in time. The reply is recognized
    by the first order it ends, which the engine picks oldest first, so the stored
    `open_orders` tell which replies to wait for."""
    with contextlib.ExitStack() as stack:
        futures = [stack.enter_context(state.replies.expect("cancel", oid)) for oid in open_orders]
        try:
            await state.gateway.submit(market, CancelAll(user=user), user)
        except redis.exceptions.ConnectionError as error:
            raise ApiError(503, "outcome_unknown", str(error)) from error
        done, _ = await asyncio.wait(
            futures, timeout=state.settings.reply_timeout_seconds, return_when="FIRST_COMPLETED"
        )
    return next(iter(done)).result() if done else None


async def quote_order(state: AppState, body: QuoteIn) -> QuoteOut:
    """What a market order would fill at against the market's depth as it stands."""
    rules = await state.registry.rules(body.market)
    return quote(rules, body, await read_depth(state.pipe, body.market))
