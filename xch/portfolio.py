"""Portfolio arithmetic: positions, average cost and profit and loss from fills, in integer
minor units only. Pure: no I/O; the api (`GET /api/v1/portfolio`) and ws (the `portfolio`
stream) both fold fills and value positions with this module.

The method, per (user, market), in the market's quote asset:

- A fill moves base and quote. A buy receives `qty - fee` base minor units (the buyer's fee is
  charged in base) and pays `quote` quote minor units; a sell gives `qty` base minor units and
  receives `quote - fee` (the seller's fee is charged in quote). Fees are therefore inside the
  cost of what was bought and inside the proceeds of what was sold.
- The position is the signed sum of the base moved by the user's fills; the cost basis the
  quote paid for it. A fill in the direction of the position (or from flat) adds its base to
  the position and its quote to the cost basis. A fill against it closes up to the whole
  position at the average cost: the cost removed is `cost * closed / |position|`, and the
  realized P&L of the fill is the quote it moved for the closed part minus that cost. Partial
  closes keep the average cost. What a fill moves beyond the position opens a position the
  other way: a sell beyond what fills bought (say, of deposited base) opens a negative
  position whose cost basis is minus the proceeds.
- Unrealized P&L is the position valued at the last price minus its cost basis.

Rounding: integer division truncates toward zero when a fill's quote or a cost basis is split
pro rata (the remainder stays with the open position's cost basis, and a close of the whole
position removes the whole cost basis), and a valuation at a price is rounded down (toward
minus infinity) to a quote minor unit. So, exactly and always, realized P&L = the fills'
quote flows + the cost basis, and realized + unrealized = the fills' quote flows + the
position valued at the price.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from xch.money import format_minor, parse_decimal

Side = Literal["buy", "sell"]


@dataclass(frozen=True, slots=True)
class Fill:
    """One fill of one user: `qty` base minor units traded, `quote` quote minor units (price *
    qty), `fee` in base minor units for a buy and in quote minor units for a sell."""

    trade_id: int
    side: Side
    qty: int
    quote: int
    fee: int

    @property
    def base_flow(self) -> int:
        """Base minor units the fill gave the user (negative: it took them)."""
        return self.qty - self.fee if self.side == "buy" else -self.qty

    @property
    def quote_flow(self) -> int:
        """Quote minor units the fill gave the user (negative: it took them)."""
        return -self.quote if self.side == "buy" else self.quote - self.fee


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def _pow10(exponent: int) -> int:
    return int(10**exponent)


def share(amount: int, part: int, whole: int) -> int:
    """`amount * part / whole` truncated toward zero (0 < part ≤ whole)."""
    quotient = abs(amount) * part // whole
    return quotient if amount >= 0 else -quotient


@dataclass(slots=True)
class Position:
    """A user's position in one market from their fills: `qty` base minor units (signed),
    `cost` its cost basis and `realized` P&L in quote minor units, and the last trade folded."""

    qty: int = 0
    cost: int = 0
    realized: int = 0
    fees_base: int = 0
    fees_quote: int = 0
    fills: int = 0
    last_trade_id: int = 0

    def apply(self, fill: Fill) -> None:
        base, quote = fill.base_flow, fill.quote_flow
        if fill.side == "buy":
            self.fees_base += fill.fee
        else:
            self.fees_quote += fill.fee
        self.fills += 1
        self.last_trade_id = max(self.last_trade_id, fill.trade_id)
        if base == 0 or self.qty == 0 or _sign(base) == _sign(self.qty):
            self.qty += base
            self.cost -= quote
            return
        closed = min(abs(base), abs(self.qty))
        quote_closed = share(quote, closed, abs(base))
        cost_closed = share(self.cost, closed, abs(self.qty))
        self.realized += quote_closed - cost_closed
        self.cost -= cost_closed
        self.qty += _sign(base) * closed
        opened = abs(base) - closed
        if opened:
            self.qty += _sign(base) * opened
            self.cost -= quote - quote_closed

    def unrealized(self, price: str, base_scale: int, quote_scale: int) -> int:
        return value(self.qty, price, base_scale, quote_scale) - self.cost

    def average_cost(self, base_scale: int) -> int | None:
        """The cost basis per whole base unit, in quote minor units (truncated toward zero);
        None when flat."""
        if self.qty == 0:
            return None
        scaled = self.cost * _pow10(base_scale)
        quotient = abs(scaled) // abs(self.qty)
        return quotient if _sign(scaled) == _sign(self.qty) else -quotient


def fold(fills: Iterable[Fill]) -> Position:
    position = Position()
    for fill in fills:
        position.apply(fill)
    return position


def value(qty: int, price: str, base_scale: int, quote_scale: int) -> int:
    """`qty` base minor units at `price` (a decimal string, quote per whole base unit) in quote
    minor units, rounded down (toward minus infinity)."""
    number = parse_decimal(price)
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    mantissa = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    shift = quote_scale - base_scale + exponent
    if shift >= 0:
        return qty * mantissa * _pow10(shift)
    return qty * mantissa // _pow10(-shift)


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """What valuing a market's positions needs of it."""

    name: str
    base: str
    quote: str
    base_scale: int
    quote_scale: int


def view(
    markets: Mapping[str, MarketInfo],
    positions: Mapping[str, Position],
    balances: Mapping[str, tuple[int, int]],
    last_prices: Mapping[str, str],
) -> dict[str, Any]:
    """The portfolio as the api returns it and the ws stream sends it: decimal strings.

    `positions` by market (from the user's fills), `balances` asset -> (free, locked) minor
    units, `last_prices` market -> its last trade price (missing: no trade yet).
    """
    scales: dict[str, int] = {}
    for info in markets.values():
        scales[info.base] = info.base_scale
        scales[info.quote] = info.quote_scale
    quotes = sorted({info.quote for info in markets.values()})
    totals: dict[str, dict[str, int]] = {
        quote: {"realized": 0, "unrealized": 0, "value": 0} for quote in quotes
    }

    assets = []
    for asset, (free, locked) in sorted(balances.items()):
        scale = scales.get(asset)
        if scale is None or (free == 0 and locked == 0):
            continue
        total = free + locked
        values: dict[str, str] = {}
        for quote in quotes:
            worth = _worth(markets, last_prices, asset, total, quote)
            if worth is not None:
                values[quote] = format_minor(worth, scales[quote])
                totals[quote]["value"] += worth
        assets.append(
            {
                "asset": asset,
                "free": format_minor(free, scale),
                "locked": format_minor(locked, scale),
                "total": format_minor(total, scale),
                "values": values,
            }
        )

    rows = []
    for name, position in sorted(positions.items()):
        market = markets.get(name)
        if market is None:
            continue
        bs, qs = market.base_scale, market.quote_scale
        last = last_prices.get(name)
        unrealized = None if last is None else position.unrealized(last, bs, qs)
        average = position.average_cost(bs)
        totals[market.quote]["realized"] += position.realized
        totals[market.quote]["unrealized"] += unrealized or 0
        rows.append(
            {
                "market": name,
                "base": market.base,
                "quote": market.quote,
                "position": format_minor(position.qty, bs),
                "cost_basis": format_minor(position.cost, qs),
                "average_cost": None if average is None else format_minor(average, qs),
                "realized_pnl": format_minor(position.realized, qs),
                "unrealized_pnl": None if unrealized is None else format_minor(unrealized, qs),
                "last_price": last,
                "fees_base": format_minor(position.fees_base, bs),
                "fees_quote": format_minor(position.fees_quote, qs),
                "fills": position.fills,
            }
        )

    return {
        "balances": assets,
        "positions": rows,
        "totals": [
            {
                "asset": quote,
                "value": format_minor(amounts["value"], scales[quote]),
                "realized_pnl": format_minor(amounts["realized"], scales[quote]),
                "unrealized_pnl": format_minor(amounts["unrealized"], scales[quote]),
            }
            for quote, amounts in totals.items()
        ],
    }


def _worth(
    markets: Mapping[str, MarketInfo],
    last_prices: Mapping[str, str],
    asset: str,
    amount: int,
    quote: str,
) -> int | None:
    """`amount` of `asset` in `quote` minor units: itself, or at the last price of the market
    trading it against `quote`; None if no such market has traded."""
    if asset == quote:
        return amount
    for market in markets.values():
        price = last_prices.get(market.name)
        if market.base == asset and market.quote == quote and price is not None:
            return value(amount, price, market.base_scale, market.quote_scale)
    return None


@dataclass(frozen=True, slots=True)
class Rate:
    """A price of one whole base unit in quote (decimal string) and the two scales."""

    price: str
    base_scale: int
    quote_scale: int


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """The account at the end of one bucket, in quote minor units: what its balances were
    worth, the net transfers (deposits less withdrawals) since the window opened, and the P&L
    since then: value - value at the window's opening - net transfers."""

    time: int
    value: int
    net_transfers: int
    pnl: int


def history(
    times: Sequence[int],
    opening: Mapping[str, int],
    moves: Mapping[int, Mapping[str, tuple[int, int]]],
    prices: Mapping[str, Sequence[Rate | None]],
    quote: str,
) -> tuple[list[HistoryPoint], set[str]]:
    """The account's value and P&L per bucket, and the assets held that had no price.

    `times` are the buckets' start times; `opening` the balances (free + locked, minor units)
    when the first bucket opened; `moves[i]` the balance changes of bucket i per asset, as
    (all moves, transfers among them); `prices[asset]` a rate in `quote` per bucket, with one
    more first: the rate when the window opened. The quote asset is worth itself; an asset
    without a rate in a bucket counts as nothing there and is reported.
    """
    unpriced: set[str] = set()

    def worth(asset: str, amount: int, index: int) -> int:
        if asset == quote or amount == 0:
            return amount
        rates = prices.get(asset)
        rate = rates[index] if rates is not None else None
        if rate is None:
            unpriced.add(asset)
            return 0
        return value(amount, rate.price, rate.base_scale, rate.quote_scale)

    held = dict(opening)
    opened = sum(worth(asset, amount, 0) for asset, amount in held.items())
    transfers = 0
    points = []
    for index, time in enumerate(times):
        for asset, (delta, moved) in moves.get(index, {}).items():
            held[asset] = held.get(asset, 0) + delta
            transfers += worth(asset, moved, index + 1)
        total = sum(worth(asset, amount, index + 1) for asset, amount in held.items())
        points.append(HistoryPoint(time, total, transfers, total - opened - transfers))
    return points, unpriced
