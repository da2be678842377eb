"""The /api/v3 general and market-data routes: ping, time, exchangeInfo, depth, trades,
aggTrades, klines, tickers, avgPrice. Public: each counts against the caller's IP only."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api.binance import queries as bqueries
from api.binance import render
from api.binance.errors import INVALID_INTERVAL, bad, illegal, invalid_symbol
from api.binance.params import MAX_MS, Params, market_of_params, query_limit, read_params
from api.binance.render import json_response, now_ms
from api.binance.symbols import by_symbol, symbol_of
from api.deps import State, limit_ip
from api.queries import trades as stored_trades
from api.services.order_plans import read_depth
from api.state import AppState
from storage.klines import fetch_klines, utc_from_ms
from xch import keys
from xch.market import Market
from xch.marketdata import decode_ticker, interval_seconds
from xch.money import format_decimal, format_units
from xch.schemas import BUY

router = APIRouter(prefix="/api/v3", include_in_schema=False)
public = [Depends(limit_ip)]

DEPTH_LIMIT = 5000
AVG_PRICE_MINUTES = 5


async def _symbols(state: AppState, params: Params) -> list[Market]:
    """The markets `symbol` or `symbols` (a JSON array) name, or every market."""
    everything = await by_symbol(state.registry)
    one, many = params.text("symbol"), params.text("symbols")
    if one is not None and many is not None:
        raise bad(-1128, "Combination of optional parameters invalid.")
    if one is not None:
        if one not in everything:
            raise invalid_symbol()
        return [everything[one]]
    if many is None:
        return list(everything.values())
    try:
        names = orjson.loads(many)
    except orjson.JSONDecodeError as error:
        raise illegal("symbols") from error
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not names:
        raise illegal("symbols")
    if any(name not in everything for name in names):
        raise invalid_symbol()
    return [everything[name] for name in dict.fromkeys(names)]


@router.get("/ping", dependencies=public)
async def ping() -> dict[str, Any]:
    return {}


@router.get("/time", dependencies=public)
async def server_time() -> dict[str, Any]:
    return {"serverTime": now_ms()}


@router.get("/exchangeInfo", dependencies=public)
async def exchange_info(request: Request, state: State) -> JSONResponse:
    params = await read_params(request)
    params.only("symbol", "symbols", "permissions", "showPermissionSets", "symbolStatus")
    chosen = await _symbols(state, params)
    settings = state.settings
    return json_response(
        {
            "timezone": "UTC",
            "serverTime": now_ms(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "SECOND",
                    "intervalNum": settings.rate_limit_window_seconds,
                    "limit": settings.rate_limit_ip,
                },
                {
                    "rateLimitType": "ORDERS",
                    "interval": "SECOND",
                    "intervalNum": settings.rate_limit_window_seconds,
                    "limit": settings.rate_limit_user,
                },
            ],
            "exchangeFilters": [],
            "symbols": [render.symbol_info(market) for market in chosen],
        }
    )


@router.get("/depth", dependencies=public)
async def depth(request: Request, state: State) -> JSONResponse:
    params = await read_params(request)
    params.only("symbol", "limit")
    _, rules, _ = await market_of_params(state, params)
    limit = query_limit(params, 100, DEPTH_LIMIT)
    value = await read_depth(state.pipe, rules.name)

    def levels(side: list[tuple[int, int]]) -> list[list[str]]:
        return [
            [format_units(price, rules.tick), format_units(lots, rules.lot)]
            for price, lots in side[:limit]
        ]

    return json_response(
        {
            "lastUpdateId": value.last_update_id,
            "bids": levels(value.bids),
            "asks": levels(value.asks),
        }
    )


@router.get("/trades", dependencies=public)
async def recent_trades(request: Request, state: State) -> JSONResponse:
    params = await read_params(request)
    params.only("symbol", "limit")
    _, rules, _ = await market_of_params(state, params)
    rows = await stored_trades(state.db, rules.name, query_limit(params, 500, 1000))
    return json_response(
        [
            {
                "id": trade.trade_id,
                "price": trade.price,
                "qty": trade.quantity,
                "quoteQty": trade.quote_quantity,
                "time": trade.time,
                "isBuyerMaker": trade.taker_side != BUY,
                "isBestMatch": True,
            }
            for trade in reversed(rows)
        ]
    )


@router.get("/aggTrades", dependencies=public)
async def aggregate_trades(request: Request, state: State) -> JSONResponse:
    """Each trade its own aggregate (one taker order's fills at one price are separate trades
    here, which Binance's definition allows): `a`, `f` and `l` are the trade id."""
    params = await read_params(request)
    params.only("symbol", "fromId", "startTime", "endTime", "limit")
    _, rules, _ = await market_of_params(state, params)
    limit = query_limit(params, 500, 1000)
    from_id = params.integer("fromId")
    start, end = params.integer("startTime", high=MAX_MS), params.integer("endTime", high=MAX_MS)
    if from_id is not None and (start is not None or end is not None):
        raise bad(-1128, "Combination of optional parameters invalid.")
    if start is not None and end is not None and start > end:
        raise bad(-1023, "Start time is greater than end time.")
    rows = await bqueries.market_trades(
        state.db,
        rules.name,
        from_id,
        None if start is None else utc_from_ms(start),
        None if end is None else utc_from_ms(end),
        limit,
    )
    return json_response(
        [
            {
                "a": row["trade_id"],
                "p": format_decimal(row["price"]),
                "q": format_decimal(row["qty"]),
                "f": row["trade_id"],
                "l": row["trade_id"],
                "T": int(row["ts"].timestamp() * 1000),
                "m": row["taker_side"] != BUY,
                "M": True,
            }
            for row in rows
        ]
    )


@router.get("/klines", dependencies=public)
async def klines(request: Request, state: State) -> JSONResponse:
    params = await read_params(request)
    params.only("symbol", "interval", "startTime", "endTime", "limit", "timeZone")
    market, rules, _ = await market_of_params(state, params)
    interval = params.required("interval")
    if interval not in market.spec.klines.intervals:
        raise bad(INVALID_INTERVAL, "Invalid interval.")
    if params.text("timeZone") not in (None, "0", "+00:00", "0:00"):
        raise bad(-1130, "Invalid data sent for a parameter: timeZone (only UTC is served).")
    limit = query_limit(params, 500, 1000)
    length = interval_seconds(interval) * 1000
    start, end = params.integer("startTime", high=MAX_MS), params.integer("endTime", high=MAX_MS)
    end_ms = end if end is not None else now_ms()
    start_ms = start if start is not None else max(0, end_ms - limit * length)
    if start_ms > end_ms:
        raise bad(-1128, "Combination of optional parameters invalid.")
    try:
        async with state.db.acquire() as conn:
            rows = await fetch_klines(
                conn, rules.name, interval, utc_from_ms(start_ms), utc_from_ms(end_ms + 1), limit
            )
    except asyncpg.UndefinedTableError:
        rows = []
    return json_response(
        [
            [
                k.open_time,
                k.open,
                k.high,
                k.low,
                k.close,
                k.volume,
                k.close_time,
                k.quote_volume,
                k.count,
                "0",
                "0",
                "0",
            ]
            for k in rows
        ]
    )


async def _ticker(state: AppState, market: Market, full: bool) -> dict[str, Any]:
    rules = market.rules()
    raw = await state.redis.get(keys.market_ticker(rules.name))
    now = now_ms()
    zero_price, zero_qty = format_units(0, rules.tick), format_units(0, rules.lot)
    out: dict[str, Any] = {"symbol": symbol_of(market)}
    stats: dict[str, Any]
    if raw is None:
        stats = {
            "open": zero_price, "high": zero_price, "low": zero_price, "last": zero_price,
            "volume": zero_qty, "quote_volume": "0", "open_time": now - 86_400_000,
            "close_time": now, "count": 0, "price_change": "0", "price_change_percent": "0",
        }  # fmt: skip
    else:
        ticker = decode_ticker(raw)
        stats = {
            "open": ticker.open, "high": ticker.high, "low": ticker.low, "last": ticker.last,
            "volume": ticker.volume, "quote_volume": ticker.quote_volume,
            "open_time": ticker.open_time, "close_time": ticker.close_time,
            "count": ticker.count, "price_change": ticker.price_change,
            "price_change_percent": ticker.price_change_percent,
        }  # fmt: skip
    volume, quote_volume = Decimal(stats["volume"]), Decimal(stats["quote_volume"])
    average = (quote_volume / volume).quantize(rules.tick) if volume else Decimal(0)
    first, last = (-1, -1)
    if stats["count"]:
        first, last = await bqueries.trade_ids(
            state.db, rules.name, utc_from_ms(stats["open_time"])
        )
    if full:
        value = await read_depth(state.pipe, rules.name)
        bid = value.bids[0] if value.bids else (0, 0)
        ask = value.asks[0] if value.asks else (0, 0)
        out |= {
            "priceChange": stats["price_change"],
            "priceChangePercent": stats["price_change_percent"],
            "weightedAvgPrice": format_decimal(average),
            "prevClosePrice": stats["open"],
            "lastPrice": stats["last"],
            "lastQty": zero_qty,
            "bidPrice": format_units(bid[0], rules.tick),
            "bidQty": format_units(bid[1], rules.lot),
            "askPrice": format_units(ask[0], rules.tick),
            "askQty": format_units(ask[1], rules.lot),
        }
        last_trade = await bqueries.last_trade(state.db, rules.name)
        if last_trade is not None and stats["count"]:
            out["lastQty"] = format_decimal(last_trade[1])
    else:
        out["lastPrice"] = stats["last"]
    return out | {
        "openPrice": stats["open"],
        "highPrice": stats["high"],
        "lowPrice": stats["low"],
        **({} if full else {"lastPrice": stats["last"]}),
        "volume": stats["volume"],
        "quoteVolume": stats["quote_volume"],
        "openTime": stats["open_time"],
        "closeTime": stats["close_time"],
        "firstId": first,
        "lastId": last,
        "count": stats["count"],
    }


@router.get("/ticker/24hr", dependencies=public)
async def ticker_24hr(request: Request, state: State) -> JSONResponse:
    params = await read_params(request)
    params.only("symbol", "symbols", "type")
    kind = params.text("type") or "FULL"
    if kind not in ("FULL", "MINI"):
        raise illegal("type")
    chosen = await _symbols(state, params)
    tickers = [await _ticker(state, market, kind == "FULL") for market in chosen]
    return json_response(tickers[0] if params.text("symbol") else tickers)


@router.get("/ticker/price", dependencies=public)
async def ticker_price(request: Request, state: State) -> JSONResponse:
    params = await read_params(request)
    params.only("symbol", "symbols")
    chosen = await _symbols(state, params)
    out = []
    for market in chosen:
        rules = market.rules()
        last = await bqueries.last_trade(state.db, rules.name)
        price = format_decimal(last[0]) if last else format_units(0, rules.tick)
        out.append({"symbol": symbol_of(market), "price": price})
    return json_response(out[0] if params.text("symbol") else out)


@router.get("/ticker/bookTicker", dependencies=public)
async def book_ticker(request: Request, state: State) -> JSONResponse:
    params = await read_params(request)
    params.only("symbol", "symbols")
    chosen = await _symbols(state, params)
    out = []
    for market in chosen:
        rules = market.rules()
        value = await read_depth(state.pipe, rules.name)
        bid = value.bids[0] if value.bids else (0, 0)
        ask = value.asks[0] if value.asks else (0, 0)
        out.append(
            {
                "symbol": symbol_of(market),
                "bidPrice": format_units(bid[0], rules.tick),
                "bidQty": format_units(bid[1], rules.lot),
                "askPrice": format_units(ask[0], rules.tick),
                "askQty": format_units(ask[1], rules.lot),
            }
        )
    return json_response(out[0] if params.text("symbol") else out)


@router.get("/avgPrice", dependencies=public)
async def avg_price(request: Request, state: State) -> JSONResponse:
    """The volume-weighted price of the last 5 minutes' trades (the last price without any)."""
    params = await read_params(request)
    params.only("symbol")
    _, rules, _ = await market_of_params(state, params)
    since = datetime.now(UTC) - timedelta(minutes=AVG_PRICE_MINUTES)
    quote, base, last_ts = await bqueries.average_price(state.db, rules.name, since)
    if base:
        price = format_decimal((quote / base).quantize(Decimal(1).scaleb(-rules.quote_scale)))
        close = int(last_ts.timestamp() * 1000) if last_ts else now_ms()
    else:
        last = await bqueries.last_trade(state.db, rules.name)
        price = format_decimal(last[0]) if last else format_units(0, rules.tick)
        close = int(last[2].timestamp() * 1000) if last else now_ms()
    return json_response({"mins": AVG_PRICE_MINUTES, "price": price, "closeTime": close})
