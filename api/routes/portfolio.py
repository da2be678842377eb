"""The caller's portfolio: balances, positions with average cost and P&L (xch.portfolio from
the fills dbproc stored, balances from Redis, last prices from the last stored trades), and
the account's value and P&L over time from the journal, valued at the klines' closes."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import Reader, State
from api.errors import ERRORS, ApiError
from api.models import Asset, MarketName
from storage import portfolio as stored
from storage.klines import fetch_klines
from xch.market import Market
from xch.marketdata import KLINE_ORIGIN, interval_seconds
from xch.money import format_decimal, format_minor
from xch.portfolio import Rate, history, view

router = APIRouter(tags=["portfolio"], responses=ERRORS)

"""Where kline buckets start (storage.klines): history buckets are aligned the same way."""


class AssetOut(BaseModel):
    asset: str
    free: str
    locked: str
    total: str
    values: dict[str, str]
    """The total's worth in each quote asset it trades against (at the last price)."""


class PositionOut(BaseModel):
    market: str
    base: str
    quote: str
    position: str
    cost_basis: str
    average_cost: str | None
    realized_pnl: str
    unrealized_pnl: str | None
    last_price: str | None
    fees_base: str
    fees_quote: str
    fills: int


class TotalOut(BaseModel):
    asset: str
    value: str
    realized_pnl: str
    unrealized_pnl: str


class PortfolioOut(BaseModel):
    balances: list[AssetOut]
    positions: list[PositionOut]
    totals: list[TotalOut]


class HistoryPointOut(BaseModel):
    time: int
    """Start of the bucket (Unix ms); the figures are at its end."""
    value: str
    net_transfers: str
    pnl: str


class HistoryOut(BaseModel):
    quote: str
    interval: str
    points: list[HistoryPointOut]
    unpriced: list[str]
    """Assets held that had no price in `quote` in some bucket: counted as worth nothing."""


@router.get("/portfolio")
async def portfolio(
    user: Reader, state: State, market: Annotated[MarketName | None, Query()] = None
) -> PortfolioOut:
    """Balances and, per market the caller has traded, position, average cost, realized and
    unrealized P&L (at the last price). `market` narrows the positions to one market."""
    if market is not None:
        await state.registry.get(market)
    markets = await stored.markets(state.db)
    positions = await stored.positions(state.db, user.user_id, market)
    balances = {
        asset: (b.free, b.locked)
        for asset, b in (await state.gateway.balances(user.user_id)).items()
    }
    prices = await stored.last_prices(state.db)
    return PortfolioOut.model_validate(view(markets, positions, balances, prices))


def _quote_of(markets: dict[str, Market], quote: str | None) -> str:
    quotes = [market.spec.quote.asset for market in markets.values()]
    if quote is None:
        if not quotes:
            raise ApiError(404, "no_markets", "no market is listed")
        return max(sorted(set(quotes)), key=quotes.count)
    if quote not in quotes:
        raise ApiError(400, "unknown_asset", f"no market is quoted in {quote}")
    return quote


@router.get("/portfolio/history")
async def portfolio_history(
    user: Reader,
    state: State,
    interval: Annotated[str, Query(pattern=r"^[1-9][0-9]{0,3}[mhdw]$")] = "1h",
    limit: Annotated[int, Query(ge=1, le=1000)] = 168,
    quote: Annotated[Asset | None, Query()] = None,
) -> HistoryOut:
    """The account's value in `quote` (default: the quote asset of most markets) at the end of
    each of the last `limit` buckets of `interval`, with the P&L since the first opened: value
    less its value then, less the deposits and withdrawals since (valued when they came)."""
    registry = await state.registry.all()
    quote = _quote_of(registry, quote)
    offered = {
        i for m in registry.values() if m.spec.quote.asset == quote for i in m.spec.klines.intervals
    }
    if interval not in offered:
        raise ApiError(
            400,
            "unknown_interval",
            f"markets in {quote} have klines for {', '.join(sorted(offered))}",
        )
    seconds = interval_seconds(interval)
    step = timedelta(seconds=seconds)
    now = datetime.now(UTC)
    current = KLINE_ORIGIN + step * ((now - KLINE_ORIGIN) // step)
    start, end = current - step * (limit - 1), current + step
    scales = await state.registry.asset_scales()
    moves = await stored.moves(state.db, user.user_id, seconds, start, end, scales)
    held = set(moves.opening) | {asset for bucket in moves.buckets.values() for asset in bucket}
    times = [start + step * index for index in range(limit)]
    prices: dict[str, list[Rate | None]] = {}
    async with state.db.acquire() as conn:
        for market in registry.values():
            spec = market.spec
            if spec.quote.asset != quote or spec.base.asset not in held:
                continue
            if interval not in spec.klines.intervals:
                raise ApiError(
                    400,
                    "unknown_interval",
                    f"{market.name} has klines for {', '.join(spec.klines.intervals)}",
                )
            prices[spec.base.asset] = await _rates(conn, market, interval, times, end)
    index = {moment: n for n, moment in enumerate(times)}
    points, unpriced = history(
        [int(moment.timestamp() * 1000) for moment in times],
        moves.opening,
        {index[bucket]: changes for bucket, changes in moves.buckets.items() if bucket in index},
        prices,
        quote,
    )
    scale = scales[quote]
    return HistoryOut(
        quote=quote,
        interval=interval,
        points=[
            HistoryPointOut(
                time=point.time,
                value=format_minor(point.value, scale),
                net_transfers=format_minor(point.net_transfers, scale),
                pnl=format_minor(point.pnl, scale),
            )
            for point in points
        ],
        unpriced=sorted(unpriced),
    )


async def _rates(
    conn: asyncpg.Connection, market: Market, interval: str, times: list[datetime], end: datetime
) -> list[Rate | None]:
    """The market's price when the window opened (its last trade before), then its close at
    the end of each bucket (the last close carried over buckets without trades)."""
    spec = market.spec
    try:
        candles = await fetch_klines(conn, market.name, interval, times[0], end, len(times))
    except asyncpg.UndefinedTableError:
        candles = []
    closes = {candle.open_time: candle.close for candle in candles}
    before = await stored.last_price_before(conn, market.name, times[0])
    price = None if before is None else format_decimal(before)
    rates: list[Rate | None] = [
        None if price is None else Rate(price, spec.base.scale, spec.quote.scale)
    ]
    for moment in times:
        price = closes.get(int(moment.timestamp() * 1000), price)
        rates.append(None if price is None else Rate(price, spec.base.scale, spec.quote.scale))
    return rates
