"""What an order must lock before it may enter a market: the rule shared by the api's
lock-and-enqueue path, the engine and the replay tool, so all lock exactly what the engine
expects."""

from collections.abc import Iterable
from typing import Final

from ledger.natives import STOP_LIMIT_TYPES, STOP_TYPES
from ledger.tickets import Ticket
from xch.market import MarketRules
from xch.money import BPS
from xch.schemas import BUY, LIMIT, Place

STOP_MARKET_BUY_ALLOWANCE_BPS: Final = 500
"""A stop-market buy by quantity cannot know its cost until it triggers: it locks its
quantity at the stop price plus this allowance (5%) for the price moving on, and spends no
more than that once triggered (what it cannot buy within it expires)."""


def spent_asset(rules: MarketRules, side: str) -> str:
    """The asset an order pays with: quote for a buy, base for a sell."""
    return rules.quote if side == BUY else rules.base


def lock_amount(
    rules: MarketRules, order: Place | Ticket, asks: Iterable[tuple[int, int]] | None = None
) -> int:
    """Minor units of `spent_asset` to lock for `order` (its `locked` field is ignored).

    A sell locks its quantity; a limit or stop-limit buy price x qty; a market or
    stop-market buy by quote amount that amount. A market buy by quantity locks what filling
    it against the current `asks` ((price, total lots), best first) would cost (the engine
    spends no more than that; anything left over is unlocked at once); a stop-market buy by
    quantity locks its quantity at the stop price plus `STOP_MARKET_BUY_ALLOWANCE_BPS`.
    """
    ticket = order if isinstance(order, Ticket) else Ticket.of(order)
    if ticket.side != BUY:
        return ticket.qty * rules.base_per_lot
    if ticket.type == LIMIT or ticket.type in STOP_LIMIT_TYPES:
        return ticket.price * ticket.qty * rules.quote_per_tick_lot
    if ticket.quote_qty:
        return ticket.quote_qty
    if ticket.type in STOP_TYPES:
        at_stop = ticket.stop_price * ticket.qty * rules.quote_per_tick_lot
        return -(-at_stop * (BPS + STOP_MARKET_BUY_ALLOWANCE_BPS) // BPS)
    if asks is None:
        raise ValueError("the lock of a market buy by quantity depends on the asks")
    return cost_to_buy(rules, ticket.qty, asks)


def list_lock(rules: MarketRules, legs: list[Place]) -> int:
    """The lock of an OCO list: only one leg can execute, so the larger of its legs' locks."""
    return max(lock_amount(rules, leg) for leg in legs)


def cost_to_buy(rules: MarketRules, lots: int, asks: Iterable[tuple[int, int]]) -> int:
    """Quote minor units that buying `lots` from `asks` ((price, total lots), best first)
    costs, less if they run out: the book's (`BookSide.totals`) or the depth the api reads."""
    cost = 0
    for price, total in asks:
        if lots <= 0:
            break
        take = min(lots, total)
        cost += take * price * rules.quote_per_tick_lot
        lots -= take
    return cost
