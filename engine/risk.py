"""What an order must lock before it may enter a market: the rule shared by the api's
lock-and-enqueue path and the replay tool, so both lock exactly what the engine expects."""

from engine.book import BookSide
from xch.market import MarketRules
from xch.schemas import BUY, LIMIT, Place


def spent_asset(rules: MarketRules, side: str) -> str:
    """The asset an order pays with: quote for a buy, base for a sell."""
    return rules.quote if side == BUY else rules.base


def lock_amount(rules: MarketRules, order: Place, asks: BookSide) -> int:
    """Minor units of `spent_asset` to lock for `order` (its `locked` field is ignored).

    A limit buy locks price x qty, a sell its quantity, a market buy by quote amount that
    amount. A market buy by quantity locks what filling it against the current asks would
    cost (the engine spends no more than that; anything left over is unlocked at once).
    """
    if order.side != BUY:
        return order.qty * rules.base_per_lot
    if order.type == LIMIT:
        return order.price * order.qty * rules.quote_per_tick_lot
    if order.quote_qty:
        return order.quote_qty
    return cost_to_buy(rules, order.qty, asks)


def cost_to_buy(rules: MarketRules, lots: int, asks: BookSide) -> int:
    """Quote minor units that buying `lots` from the best asks costs (less if they run out)."""
    cost = 0
    for price in asks.prices():
        if lots <= 0:
            break
        take = min(lots, asks.levels[price].total)
        cost += take * price * rules.quote_per_tick_lot
        lots -= take
    return cost
