"""Balances, the deposits and withdrawals admins make, and the demo faucet."""

from decimal import Decimal

from api import users
from api.errors import ApiError
from api.models import BalanceOut, FaucetIn, FundsIn, FundsOut
from api.state import AppState
from ledger.gateway import FundsError, ReferenceClaim, balances_of
from xch import keys
from xch.money import AmountError, format_minor, to_minor

DEPOSIT, WITHDRAW = "deposit", "withdraw"
"""The namespaces of admin references (`xch.keys.funds_claim`)."""
REFERENCE_REUSED = "reference_reused"


async def balances(state: AppState, user: str) -> list[BalanceOut]:
    """The user's balances in every asset some market trades."""
    scales = await state.registry.asset_scales()
    # On the pipelined connection: a bot reads its balances between orders.
    flat = await state.pipe.execute("HGETALL", keys.balances(user))
    out = []
    for asset, balance in balances_of(zip(flat[::2], flat[1::2], strict=True)).items():
        scale = scales.get(asset)
        if scale is not None:
            out.append(
                BalanceOut(
                    asset=asset,
                    free=format_minor(balance.free, scale),
                    locked=format_minor(balance.locked, scale),
                )
            )
    return out


async def _minor(state: AppState, asset: str, amount: str) -> tuple[int, int]:
    """(amount in minor units, scale) of an asset some market trades."""
    scale = (await state.registry.asset_scales()).get(asset)
    if scale is None:
        raise ApiError(400, "unknown_asset", f"no market trades {asset}")
    try:
        units = to_minor(amount, scale)
    except AmountError as error:
        raise ApiError(
            400, "invalid_amount", f"amount must have at most {scale} decimals"
        ) from error
    if units <= 0:
        raise ApiError(400, "invalid_amount", "amount must be positive")
    return units, scale


async def _move(state: AppState, body: FundsIn, kind: str, idempotent: bool) -> FundsOut:
    """A deposit or withdrawal (`kind`). An admin's (`idempotent`) claims its reference in
    `kind`'s namespace: a retry gets the first reply and moves nothing, another request under
    the same reference is refused (409)."""
    units, scale = await _minor(state, body.asset, body.amount)
    if await users.user_by_id(state.db, body.user_id) is None:
        raise ApiError(404, "unknown_user", "no such user")
    move = state.gateway.deposit if kind == DEPOSIT else state.gateway.withdraw
    claim = None
    if idempotent:
        ttl = state.settings.funds_reference_ttl_seconds
        claim = ReferenceClaim(keys.funds_claim(kind, body.reference), ttl)
    try:
        free = await move(body.user_id, body.asset, units, body.reference, claim)
    except FundsError as error:
        if error.reason == REFERENCE_REUSED:
            message = f"reference {body.reference!r} was used by another {kind}"
            raise ApiError(409, REFERENCE_REUSED, message) from error
        raise ApiError(400, error.reason, error.reason.replace("_", " ")) from error
    return FundsOut(user_id=body.user_id, asset=body.asset, free=format_minor(free, scale))


async def deposit(state: AppState, body: FundsIn) -> FundsOut:
    return await _move(state, body, DEPOSIT, idempotent=True)


async def withdraw(state: AppState, body: FundsIn) -> FundsOut:
    return await _move(state, body, WITHDRAW, idempotent=True)


async def faucet(state: AppState, user: str, body: FaucetIn) -> FundsOut:
    """Free test funds, in local and demo mode only (EXCHANGE_API_FAUCET_ENABLED)."""
    if not state.settings.faucet_enabled:
        raise ApiError(403, "faucet_disabled", "the faucet is switched off here")
    if Decimal(body.amount) > state.settings.faucet_max:
        raise ApiError(400, "invalid_amount", f"at most {state.settings.faucet_max} per call")
    request = FundsIn(user_id=user, asset=body.asset, amount=body.amount, reference="faucet")
    return await _move(state, request, DEPOSIT, idempotent=False)
