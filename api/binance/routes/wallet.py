"""The account routes Binance serves under /sapi that clients call when they start: system
status, trading fees, the assets' deposit and withdrawal flags, the margin pairs (none: there
is no margin trading here), and the futures exchanges' exchangeInfo (no symbols: there are no
futures here), so that a client loading every market type it knows finds those types empty."""

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api.binance import render
from api.binance.params import signed
from api.binance.render import json_response, now_ms
from api.binance.symbols import market_of_symbol, symbol_of
from api.deps import State, limit_ip
from api.services import funds
from xch.money import format_minor

router = APIRouter(include_in_schema=False)
public = [Depends(limit_ip)]


@router.get("/sapi/v1/system/status", dependencies=public)
async def system_status() -> dict[str, Any]:
    return {"status": 0, "msg": "normal"}


@router.get("/sapi/v1/asset/tradeFee")
async def trade_fee(request: Request, state: State) -> JSONResponse:
    _, params = await signed(request, state, "read")
    params.only("symbol")
    symbol = params.text("symbol")
    if symbol is None:
        markets = list((await state.registry.all()).values())
    else:
        markets = [await market_of_symbol(state.registry, symbol)]
    return json_response(
        [
            {
                "symbol": symbol_of(market),
                "makerCommission": render.fee_rate(market.spec.fees.maker_bps),
                "takerCommission": render.fee_rate(market.spec.fees.taker_bps),
            }
            for market in markets
        ]
    )


@router.get("/sapi/v1/capital/config/getall")
async def coins(request: Request, state: State) -> JSONResponse:
    """Every asset some market trades, with the user's balance. Deposits and withdrawals are
    not made through this api (the native faucet and funds routes), so both flags are off."""
    principal, params = await signed(request, state, "read")
    params.only()
    held = {b.asset: b for b in await funds.balances(state, principal.user_id)}
    out = []
    for asset, scale in sorted((await state.registry.asset_scales()).items()):
        zero = format_minor(0, scale)
        balance = held.get(asset)
        out.append(
            {
                "coin": asset,
                "name": asset,
                "depositAllEnable": False,
                "withdrawAllEnable": False,
                "free": balance.free if balance else zero,
                "locked": balance.locked if balance else zero,
                "freeze": zero,
                "withdrawing": zero,
                "ipoing": zero,
                "ipoable": zero,
                "storage": zero,
                "isLegalMoney": False,
                "trading": True,
                "networkList": [],
            }
        )
    return json_response(out)


@router.get("/sapi/v1/margin/allPairs", dependencies=public)
@router.get("/sapi/v1/margin/isolated/allPairs", dependencies=public)
async def margin_pairs() -> list[Any]:
    return []


@router.get("/fapi/v1/exchangeInfo", dependencies=public)
@router.get("/dapi/v1/exchangeInfo", dependencies=public)
async def futures_exchange_info() -> JSONResponse:
    return json_response(
        {
            "timezone": "UTC",
            "serverTime": now_ms(),
            "rateLimits": [],
            "exchangeFilters": [],
            "assets": [],
            "symbols": [],
        }
    )
