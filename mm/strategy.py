"""The market maker's decisions, in integers (ticks, lots, minor units, basis points): no I/O.

Each round the maker observes the market's trades, estimates a fair price (an exponential
average of trade prices, starting at the reference price), its volatility (an exponential
average of absolute moves, in bps) and the recent traded volume, and builds a ladder of
post-only quotes around the fair price. The spread widens with volatility and volume; both
sides shift against inventory (holding too much base lowers the quotes, so it sells more and
buys less); a side that would breach the inventory bound or the balances is trimmed from the
outside in. Live quotes are replaced only when they drift beyond a threshold.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from xch.market import Market, MarketRules
from xch.money import BPS, minor_unit, to_units
from xch.schemas import BUY, SELL

SCALE = 1_000_000
"""Fixed-point scale of the estimators (fair price in millionths of a tick)."""


@dataclass(frozen=True)
class Params:
    """A Market's marketMaker spec and rules, as integers."""

    spread_bps: int
    levels: int
    spacing_bps: int
    order_lots: int
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
        return cls(
            spread_bps=maker.spread_bps,
            levels=maker.levels,
            spacing_bps=maker.level_spacing_bps,
            order_lots=order_lots,
            max_inventory=inventory,
            reference_ticks=reference,
            base_per_lot=rules.base_per_lot,
            quote_per_tick_lot=rules.quote_per_tick_lot,
            maker_fee_bps=spec.fees.maker_bps,
        )


def _lots_for_twice_min_notional(rules: MarketRules, price: int | None) -> int:
    """The fewest lots whose notional at `price` is twice minNotional (1 without a price)."""
    if not price or not rules.min_notional:
        return 1
    return max(1, -(-2 * rules.min_notional // (price * rules.quote_per_tick_lot)))


@dataclass
class Estimator:
    """Fair price, volatility and traded volume, from trades as they come."""

    fair: int
    """Fair price in millionths of a tick."""
    volatility_bps: int = 0
    """Exponential average of absolute trade-to-trade moves, in bps, scaled by SCALE."""
    volume_lots: int = 0
    """Exponential average of lots traded per round, scaled by SCALE."""
    last_price: int | None = None
    weight_per_mille: int = 200
    """How much one trade moves the averages (per mille)."""

    @classmethod
    def starting_at(cls, ticks: int) -> "Estimator":
        return cls(fair=ticks * SCALE)

    @property
    def fair_ticks(self) -> int:
        return max(1, (self.fair + SCALE // 2) // SCALE)

    def observe(self, trades: Iterable[tuple[int, int]]) -> None:
        """Fold one round's trades, (price ticks, lots) oldest first."""
        w = self.weight_per_mille
        lots = 0
        for price, qty in trades:
            self.fair += (price * SCALE - self.fair) * w // 1000
            if self.last_price:
                move = abs(price - self.last_price) * BPS * SCALE // self.last_price
                self.volatility_bps += (move - self.volatility_bps) * w // 1000
            self.last_price = price
            lots += qty
        self.volume_lots += (lots * SCALE - self.volume_lots) * w // 1000


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


def half_spread_bps(params: Params, estimator: Estimator, order_lots: int) -> int:
    """Half the innermost spread: the configured one, widened by volatility (twice the
    average move) and by heavy flow (one bp per ladder's worth of lots traded a round)."""
    volatility = 2 * estimator.volatility_bps // SCALE
    ladder_lots = max(1, order_lots * params.levels)
    flow = estimator.volume_lots // SCALE // ladder_lots
    return max(1, params.spread_bps // 2) + volatility + min(flow, params.spread_bps)


def skew_bps(params: Params, holdings: Holdings, fair_ticks: int) -> int:
    """Positive when the maker holds too much base: both sides move down by that many bps.
    At most the half spread plus one level spacing, so quotes never cross the fair price by
    more than that."""
    limit = params.spread_bps // 2 + params.spacing_bps
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


def ladder(params: Params, estimator: Estimator, holdings: Holdings) -> list[Quote]:
    """The quotes to show: bids best first, then asks best first."""
    fair = estimator.fair_ticks
    half = half_spread_bps(params, estimator, params.order_lots)
    skew = skew_bps(params, holdings, fair)
    bids, asks = [], []
    for level in range(params.levels):
        out = half + level * params.spacing_bps
        bid = fair * (BPS - out - skew) // BPS
        ask = -(-fair * (BPS + out - skew) // BPS)
        if bid >= 1:
            bids.append(Quote(BUY, bid, params.order_lots))
        asks.append(Quote(SELL, max(ask, bid + 1), params.order_lots))
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
