"""The market maker's decisions, in integers (ticks, lots, minor units, basis points): no I/O.

A reservation-price model in the manner of Avellaneda and Stoikov, and of Hummingbot's pure
market making. Each round (one refresh interval) the maker folds the market's new trades
into a fair price (an exponential average of trade prices, starting at the reference price)
and a volatility (an exponential average of the fair price's squared move per round, in
bps: a float, as an estimate may be). The reservation price is the fair price shifted
against the inventory (holding too much base lowers it, so the maker sells more and buys
less). Around it goes a spread of `spreadBps`, widened by the volatility (what the price may
move before the next refresh) and never beyond `maxSpreadBps`. The ladder puts `levels`
quotes a side `levelSpacingBps` apart, each level's size `sizeGrowthPct` of `orderSize`
larger than the one inside it; a side is trimmed from the outside in where it would breach
the balances or `maxInventory`. No quote reaches the opposite side's best price of other
traders (post-only quotes would be refused there), and bids stay strictly below asks, so
the maker never takes liquidity nor trades with itself.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from xch.market import Market, MarketRules
from xch.money import BPS, minor_unit, to_units
from xch.schemas import BUY, SELL

SCALE = 1_000_000
"""Fixed-point scale of the fair price (millionths of a tick)."""
MAX_SPREAD_MULTIPLE = 3
"""Without `maxSpreadBps`, the spread widens to at most this many times `spreadBps`."""
HORIZON_ROUNDS = 10
"""Rounds over which the volatility is measured (see Estimator)."""
RISK_DEVIATIONS = 2
"""How many standard deviations of one refresh's price move the spread makes room for."""


@dataclass(frozen=True)
class Params:
    """A Market's marketMaker spec and rules, as integers."""

    spread_bps: int
    max_spread_bps: int
    levels: int
    spacing_bps: int
    order_lots: int
    size_growth_pct: int
    refresh_ms: int | None
    """How often the maker requotes (None: its EXCHANGE_MM_INTERVAL_SECONDS)."""
    max_inventory: int | None
    """Base minor units the maker may hold at most (None: its balances are the bound)."""
    reference_ticks: int | None
    base_per_lot: int
    quote_per_tick_lot: int
    maker_fee_bps: int

    @classmethod
    def of(cls, market: Market) -> "Params":
        spec, rules = market.spec, market.rules()
        maker = spec.market_maker
        reference = rules.price_to_ticks(maker.reference_price) if maker.reference_price else None
        if maker.order_size is not None:
            order_lots = rules.qty_to_lots(maker.order_size)
        else:
            order_lots = _lots_for_twice_min_notional(rules, reference)
        inventory = (
            to_units(maker.max_inventory, minor_unit(spec.base.scale))
            if maker.max_inventory is not None
            else None
        )
        widest = maker.max_spread_bps or MAX_SPREAD_MULTIPLE * maker.spread_bps
        return cls(
            spread_bps=maker.spread_bps,
            max_spread_bps=max(maker.spread_bps, widest),
            levels=maker.levels,
            spacing_bps=maker.level_spacing_bps,
            order_lots=order_lots,
            size_growth_pct=maker.size_growth_pct or 0,
            refresh_ms=maker.refresh_ms,
            max_inventory=inventory,
            reference_ticks=reference,
            base_per_lot=rules.base_per_lot,
            quote_per_tick_lot=rules.quote_per_tick_lot,
            maker_fee_bps=spec.fees.maker_bps,
        )

    def level_lots(self, level: int) -> int:
        """The size of the quote `level` steps out: growing with the distance from the mid."""
        return self.order_lots * (100 + level * self.size_growth_pct) // 100


def _lots_for_twice_min_notional(rules: MarketRules, price: int | None) -> int:
    """The fewest lots whose notional at `price` is twice minNotional (1 without a price)."""
    if not price or not rules.min_notional:
        return 1
    return max(1, -(-2 * rules.min_notional // (price * rules.quote_per_tick_lot)))


@dataclass
class Estimator:
    """Fair price and volatility, from trades as they come, one round at a time.

    The volatility is measured over HORIZON_ROUNDS rounds and scaled down to one: trades
    alternately at the bid and at the ask (the bid-ask bounce) move the fair price back and
    forth, which would read as volatility over one round and widen the spread, which widens
    the bounce; over many rounds the bounce stays as small while a real move grows."""

    fair: int
    """Fair price in millionths of a tick."""
    variance_bps2: float = 0.0
    """Exponential average of the fair price's squared move per round, in bps squared."""
    weight_per_mille: int = 200
    """How much one trade moves the fair price (per mille)."""
    round_weight: float = 0.05
    """How much one round moves the variance (about a 20-round memory)."""
    history: list[int] = field(default_factory=list)
    """The fair price at the start of each of the last HORIZON_ROUNDS rounds."""

    @classmethod
    def starting_at(cls, ticks: int) -> "Estimator":
        return cls(fair=ticks * SCALE)

    @property
    def fair_ticks(self) -> int:
        return max(1, (self.fair + SCALE // 2) // SCALE)

    @property
    def volatility_bps(self) -> float:
        """The standard deviation of the fair price's move over one round, in bps."""
        return math.sqrt(self.variance_bps2)

    def observe(self, trades: Iterable[tuple[int, int]]) -> None:
        """Fold one round's trades, (price ticks, lots) oldest first (none: a quiet round)."""
        self.history.append(self.fair)
        w = self.weight_per_mille
        for price, _ in trades:
            self.fair += (price * SCALE - self.fair) * w // 1000
        if len(self.history) < HORIZON_ROUNDS:
            return
        start = self.history.pop(0)
        move_bps = (self.fair - start) * BPS / max(1, start)
        per_round = move_bps * move_bps / HORIZON_ROUNDS
        self.variance_bps2 += (per_round - self.variance_bps2) * self.round_weight


@dataclass(frozen=True)
class Quote:
    side: str
    price: int
    lots: int


@dataclass(frozen=True)
class Holdings:
    """What the maker owns in total (free + locked in its own orders), in minor units."""

    base: int
    quote: int


@dataclass(frozen=True)
class Touch:
    """The best bid and ask of everyone but the maker (None: that side is empty)."""

    bid: int | None = None
    ask: int | None = None


def spread_bps(params: Params, estimator: Estimator) -> int:
    """The innermost spread: the configured one, plus room for the price's move over one
    refresh on each side (RISK_DEVIATIONS standard deviations), capped at maxSpreadBps."""
    risk = math.ceil(2 * RISK_DEVIATIONS * estimator.volatility_bps)
    return min(params.max_spread_bps, params.spread_bps + risk)


def skew_bps(params: Params, holdings: Holdings, fair_ticks: int, limit: int) -> int:
    """How far below the fair price the reservation price is (negative: above), at most
    `limit`: positive when the maker holds more base than half of maxInventory (or, without
    it, more base value than quote value), in proportion to the excess."""
    if params.max_inventory:
        target = params.max_inventory // 2
        excess = holdings.base - target
        return _clamp(excess * limit // max(1, target), limit)
    base_value = holdings.base * fair_ticks * params.quote_per_tick_lot // params.base_per_lot
    total = base_value + holdings.quote
    if total <= 0:
        return 0
    return _clamp((base_value - holdings.quote) * limit // total, limit)


def _clamp(value: int, limit: int) -> int:
    return max(-limit, min(limit, value))


def ladder(
    params: Params, estimator: Estimator, holdings: Holdings, touch: Touch | None = None
) -> list[Quote]:
    """The quotes to show: bids best first, then asks best first. The reservation price
    moves by at most half the spread, so the heavy side's best quote reaches the fair price
    but never goes through it."""
    touch = touch or Touch()
    fair = estimator.fair_ticks
    spread = spread_bps(params, estimator)
    bid_out, ask_out = spread // 2, spread - spread // 2
    skew = skew_bps(params, holdings, fair, bid_out)
    bids: list[Quote] = []
    asks: list[Quote] = []
    bid_limit = touch.ask - 1 if touch.ask is not None else None
    for level in range(params.levels):
        step = level * params.spacing_bps
        bid = fair * (BPS - bid_out - step - skew) // BPS
        if bid_limit is not None:
            bid = min(bid, bid_limit)
        if bids:
            bid = min(bid, bids[-1].price - 1)
        if bid >= 1:
            bids.append(Quote(BUY, bid, params.level_lots(level)))
    ask_floor = max(touch.bid or 0, bids[0].price if bids else 0) + 1
    for level in range(params.levels):
        step = level * params.spacing_bps
        ask = max(-(-fair * (BPS + ask_out + step - skew) // BPS), ask_floor)
        if asks:
            ask = max(ask, asks[-1].price + 1)
        asks.append(Quote(SELL, ask, params.level_lots(level)))
    return _affordable(params, bids, holdings, BUY) + _affordable(params, asks, holdings, SELL)


def _affordable(params: Params, quotes: list[Quote], holdings: Holdings, side: str) -> list[Quote]:
    """The innermost quotes of one side that the holdings (and the inventory bound) cover.
    Fees are charged on what a fill brings in, so the amount locked is just price x size."""
    kept: list[Quote] = []
    quote_left, base_left = holdings.quote, holdings.base
    room = None
    if params.max_inventory is not None:
        room = params.max_inventory - holdings.base
    for quote in quotes:
        base = quote.lots * params.base_per_lot
        if side == BUY:
            cost = quote.price * quote.lots * params.quote_per_tick_lot
            if cost > quote_left or (room is not None and base > room):
                break
            quote_left -= cost
            if room is not None:
                room -= base
        else:
            if base > base_left:
                break
            base_left -= base
        kept.append(quote)
    return kept


def others_touch(
    bids: Sequence[tuple[int, int]], asks: Sequence[tuple[int, int]], own: Sequence["LiveOrder"]
) -> Touch:
    """The best bid and ask of everyone else, from the book's levels (price ticks, lots, best
    first) less the maker's own open lots at each price."""
    return Touch(_first_not_own(bids, own, BUY), _first_not_own(asks, own, SELL))


def _first_not_own(
    levels: Sequence[tuple[int, int]], own: Sequence["LiveOrder"], side: str
) -> int | None:
    mine: dict[int, int] = {}
    for order in own:
        if order.side == side:
            mine[order.price] = mine.get(order.price, 0) + order.lots
    for price, lots in levels:
        if lots > mine.get(price, 0):
            return price
    return None


@dataclass(frozen=True)
class LiveOrder:
    order_id: str
    side: str
    price: int
    lots: int
    """Lots still open."""


@dataclass(frozen=True)
class Plan:
    cancel: list[str]
    place: list[Quote]


def requote(live: Sequence[LiveOrder], desired: Sequence[Quote], threshold_bps: int) -> Plan:
    """Keep each live order that a desired quote of its side is close to (price within
    `threshold_bps`, same size); cancel the rest and place what is missing."""
    unmatched = list(live)
    place: list[Quote] = []
    for quote in desired:
        match = _closest(unmatched, quote, threshold_bps)
        if match is None:
            place.append(quote)
        else:
            unmatched.remove(match)
    return Plan(cancel=[order.order_id for order in unmatched], place=place)


def _closest(orders: list[LiveOrder], quote: Quote, threshold_bps: int) -> LiveOrder | None:
    best: LiveOrder | None = None
    for order in orders:
        if order.side != quote.side or order.lots != quote.lots:
            continue
        drift = abs(order.price - quote.price) * BPS
        if drift > threshold_bps * quote.price:
            continue
        if best is None or abs(order.price - quote.price) < abs(best.price - quote.price):
            best = order
    return best


def place_before_cancel(
    plan: Plan, live: Sequence[LiveOrder], holdings: Holdings, free: Holdings, params: Params
) -> list[Quote]:
    """The new quotes that can go in before the stale ones leave, so that requoting never
    leaves a gap in the book: those the free balances cover, that keep the inventory bound
    even if every live bid fills too, and that cross none of the maker's live quotes."""
    lowest_ask = min((o.price for o in live if o.side == SELL), default=None)
    highest_bid = max((o.price for o in live if o.side == BUY), default=None)
    quote_left, base_left = free.quote, free.base
    room = None
    if params.max_inventory is not None:
        bidding = sum(o.lots for o in live if o.side == BUY) * params.base_per_lot
        room = params.max_inventory - holdings.base - bidding
    first: list[Quote] = []
    for quote in plan.place:
        base = quote.lots * params.base_per_lot
        if quote.side == BUY:
            cost = quote.price * quote.lots * params.quote_per_tick_lot
            crosses = lowest_ask is not None and quote.price >= lowest_ask
            if crosses or cost > quote_left or (room is not None and base > room):
                continue
            quote_left -= cost
            if room is not None:
                room -= base
        else:
            crosses = highest_bid is not None and quote.price <= highest_bid
            if crosses or base > base_left:
                continue
            base_left -= base
        first.append(quote)
    return first
