"""The /api/v3 account routes: the user's balances and trading rights, and a market's fees."""

from decimal import Decimal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.binance.params import market_of_params, signed
from api.binance.render import fee_rate, json_response, now_ms
from api.deps import State
from api.services import funds

router = APIRouter(prefix="/api/v3", include_in_schema=False)


@router.get("/account")
async def account(request: Request, state: State) -> JSONResponse:
    principal, params = await signed(request, state, "read")
    params.only("omitZeroBalances")
    held = await funds.balances(state, principal.user_id)
    if params.text("omitZeroBalances") == "true":
        held = [b for b in held if Decimal(b.free) or Decimal(b.locked)]
    trade = "trade" in principal.scopes
    zero = "0.00000000"
    return json_response(
        {
            # Fees are per market (exchangeInfo has none): the account-level rates are 0.
            "makerCommission": 0,
            "takerCommission": 0,
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": zero, "taker": zero, "buyer": zero, "seller": zero},
            "canTrade": trade,
            "canWithdraw": False,
            "canDeposit": False,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": now_ms(),
            "accountType": "SPOT",
            "balances": [{"asset": b.asset, "free": b.free, "locked": b.locked} for b in held],
            "permissions": ["SPOT"],
            "uid": int(principal.user_id),
        }
    )


@router.get("/account/commission")
async def commission(request: Request, state: State) -> JSONResponse:
    """The market's fees (the same for every account): the maker's and the taker's rate."""
    _, params = await signed(request, state, "read")
    params.only("symbol")
    _, rules, symbol = await market_of_params(state, params)
    zero = fee_rate(0)
    none = {"maker": zero, "taker": zero, "buyer": zero, "seller": zero}
    return json_response(
        {
            "symbol": symbol,
            "standardCommission": none
            | {"maker": fee_rate(rules.maker_bps), "taker": fee_rate(rules.taker_bps)},
            "specialCommission": none,
            "taxCommission": none,
            "discount": {
                "enabledForAccount": False,
                "enabledForSymbol": False,
                "discountAsset": "",
                "discount": zero,
            },
        }
    )
