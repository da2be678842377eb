"""Public market data: markets, depth, trades, tickers, klines. No authentication."""

import time
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, Query
from msgspec.structs import asdict

from api import queries
from api.deps import State, limit_ip
from api.errors import ERRORS, ApiError
from api.models import DepthOut, KlineOut, MarketName, MarketOut, TickerOut, TradeOut
from api.services.order_plans import read_depth
from storage.klines import fetch_klines, utc_from_ms
from xch import keys
from xch.market import Market
from xch.marketdata import decode_ticker, interval_seconds
from xch.money import format_units

router = APIRouter(tags=["market data"], responses=ERRORS, dependencies=[Depends(limit_ip)])

MarketQuery = Annotated[MarketName, Query()]
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: PostgreSQL's and Python's range


def _market_out(market: Market) -> MarketOut:
    spec = market.spec
    return MarketOut(
        name=market.name,
        base=spec.base.asset,
        quote=spec.quote.asset,
        base_scale=spec.base.scale,
        quote_scale=spec.quote.scale,
        tick_size=spec.tick_size,
        lot_size=spec.lot_size,
        min_notional=spec.min_notional,
        maker_bps=spec.fees.maker_bps,
        taker_bps=spec.fees.taker_bps,
        trading=spec.trading.value,
        kline_intervals=list(spec.klines.intervals),
    )


@router.get("/markets")
async def markets(state: State) -> list[MarketOut]:
    return [_market_out(market) for market in (await state.registry.all()).values()]


@router.get("/depth")
async def depth(
    state: State, market: MarketQuery, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> DepthOut:
    rules = await state.registry.rules(market)
    value = await read_depth(state.pipe, market)

    def levels(side: list[tuple[int, int]]) -> list[list[str]]:
        """[price, quantity] pairs, best first."""
        return [
            [format_units(price, rules.tick), format_units(lots, rules.lot)]
            for price, lots in side[:limit]
        ]

    return DepthOut(
        market=market,
        last_update_id=value.last_update_id,
        bids=levels(value.bids),
        asks=levels(value.asks),
    )


@router.get("/trades")
async def trades(
    state: State, market: MarketQuery, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[TradeOut]:
    await state.registry.get(market)
    return await queries.trades(state.db, market, limit)


@router.get("/tickers")
async def tickers(
    state: State, market: Annotated[MarketName | None, Query()] = None
) -> list[TickerOut]:
    """24-hour rolling statistics (kept by dbproc); a market without trades has none."""
    names = [market] if market else list(await state.registry.all())
    if market:
        await state.registry.get(market)
    if not names:
        return []
    raw = await state.redis.mget([keys.market_ticker(name) for name in names])
    return [TickerOut(**asdict(decode_ticker(value))) for value in raw if value is not None]


@router.get("/klines")
async def klines(
    state: State,
    market: MarketQuery,
    interval: Annotated[str, Query(pattern=r"^[1-9][0-9]{0,3}[mhdw]$")],
    start: Annotated[int | None, Query(ge=0, le=MAX_MS)] = None,
    end: Annotated[int | None, Query(ge=0, le=MAX_MS)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[KlineOut]:
    spec = (await state.registry.get(market)).spec
    if interval not in spec.klines.intervals:
        raise ApiError(
            400, "unknown_interval", f"{market} has klines for {', '.join(spec.klines.intervals)}"
        )
    end_ms = end if end is not None else int(time.time() * 1000)
    start_ms = (
        start if start is not None else max(0, end_ms - limit * interval_seconds(interval) * 1000)
    )
    if start_ms > end_ms:
        raise ApiError(400, "invalid_range", "start must not be after end")
    try:
        async with state.db.acquire() as conn:
            rows = await fetch_klines(
                conn, market, interval, utc_from_ms(start_ms), utc_from_ms(end_ms), limit
            )
    except asyncpg.UndefinedTableError as error:
        raise ApiError(404, "no_klines", f"no candles are stored for {market} yet") from error
    return [KlineOut(**asdict(row)) for row in rows]
