"""Balances, admin deposits and withdrawals, and the demo faucet."""

from fastapi import APIRouter

from api.deps import Admin, Reader, State, Trader
from api.errors import ERRORS
from api.models import BalanceOut, FaucetIn, FundsIn, FundsOut
from api.services import funds

router = APIRouter(tags=["funds"], responses=ERRORS)


@router.get("/balances")
async def balances(user: Reader, state: State) -> list[BalanceOut]:
    return await funds.balances(state, user.user_id)


@router.post("/admin/deposit")
async def deposit(body: FundsIn, _: Admin, state: State) -> FundsOut:
    return await funds.deposit(state, body)


@router.post("/admin/withdraw")
async def withdraw(body: FundsIn, _: Admin, state: State) -> FundsOut:
    return await funds.withdraw(state, body)


@router.post("/faucet")
async def faucet(body: FaucetIn, user: Trader, state: State) -> FundsOut:
    """Free test funds, in local and demo mode only (EXCHANGE_API_FAUCET_ENABLED)."""
    return await funds.faucet(state, user.user_id, body)
