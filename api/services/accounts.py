"""Accounts: sign-up, sign-in, refresh-token rotation, API keys, and the listen keys of the
WebSocket's private streams (the native api's and Binance's user-data stream alike)."""

import hashlib

from api import users
from api.errors import ApiError
from api.models import ApiKeyCreated, ApiKeyIn, ApiKeyOut, Credentials, TokensOut
from api.security import new_api_key
from api.state import AppState
from xch import keys
from xch.auth import InvalidToken, issue_token, verify_token
from xch.wire import as_text

LISTEN_KEY_TTL = 3600
LISTEN_KEY_BYTES = 30
"""A Binance listen key is 60 hex digits, as long as Binance's."""


def _tokens(state: AppState, user_id: str) -> TokensOut:
    settings = state.settings
    return TokensOut(
        user_id=user_id,
        access_token=issue_token(
            user_id, "access", settings.jwt_secret, settings.access_ttl_seconds
        ),
        refresh_token=issue_token(
            user_id, "refresh", settings.jwt_secret, settings.refresh_ttl_seconds
        ),
        expires_in=settings.access_ttl_seconds,
    )


async def sign_up(state: AppState, body: Credentials) -> TokensOut:
    email = body.email.lower()
    password_hash = await state.passwords.hash(body.password)
    user = await users.create_user(state.db, email=email, password_hash=password_hash)
    if user is None:
        raise ApiError(409, "email_taken", "an account with this email exists")
    return _tokens(state, user.id)


async def sign_in(state: AppState, body: Credentials, address: str) -> TokensOut:
    """Tokens for the right password. Wrong ones are counted per address and per email (known
    or not, so that waiting tells nothing): past their allowances both must wait, whatever the
    password, or a guesser spreading guesses over addresses would just wait for the 200."""
    email = body.email.lower()
    settings = state.settings
    subjects = (
        ("ip", address, settings.auth_failures_ip),
        ("email", hashlib.sha256(email.encode()).hexdigest(), settings.auth_failures_account),
    )
    await state.failures.check(*subjects)
    user = await users.user_by_email(state.db, email)
    # Hash even for an unknown email, so the answer's timing does not tell which it was.
    stored = user.password_hash if user else await state.passwords.hash("timing")
    if not await state.passwords.verify(stored, body.password) or user is None:
        await state.failures.failed(*subjects)
        raise ApiError(401, "bad_credentials", "wrong email or password")
    return _tokens(state, user.id)


def _spent_key(refresh_token: str) -> str:
    return f"xch:refresh-spent:{hashlib.sha256(refresh_token.encode()).hexdigest()}"


async def _spend(state: AppState, refresh_token: str, address: str) -> str:
    """The user of a valid refresh token, which this marks used: a refresh token works once
    (rotation), so a stolen one is worthless once its owner refreshed or signed out. A refused
    one is a failed authentication of the address and, if it named one, the account."""
    try:
        user_id = verify_token(refresh_token, "refresh", state.settings.jwt_secret)
    except InvalidToken as error:
        raise await _refused(state, address, f"invalid refresh token: {error}") from error
    fresh = await state.redis.set(
        _spent_key(refresh_token), b"", nx=True, ex=state.settings.refresh_ttl_seconds
    )
    if not fresh:
        raise await _refused(state, address, "this refresh token was already used", user_id)
    return user_id


async def _refused(state: AppState, address: str, message: str, user_id: str = "") -> ApiError:
    """The 401 for a refused refresh token, after counting it (429 once a subject must wait)."""
    await state.count_failure(address, user_id)
    return ApiError(401, "unauthorized", message)


async def refresh(state: AppState, refresh_token: str, address: str) -> TokensOut:
    """New tokens for a refresh token, which is spent."""
    user_id = await _spend(state, refresh_token, address)
    if await users.user_by_id(state.db, user_id) is None:
        raise await _refused(state, address, "the account no longer exists")
    return _tokens(state, user_id)


async def sign_out(state: AppState, refresh_token: str, address: str) -> None:
    """Ends the session's refresh token; its access token expires on its own."""
    await _spend(state, refresh_token, address)


def _key_out(row: users.ApiKeyRow) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id,
        key=row.key,
        label=row.label,
        scopes=list(row.scopes),
        created_at=int(row.created_at.timestamp() * 1000),
        revoked=row.revoked_at is not None,
    )


async def create_api_key(
    state: AppState, user_id: str, by_api_key: bool, body: ApiKeyIn
) -> ApiKeyCreated:
    if by_api_key:
        raise ApiError(403, "forbidden", "API keys are created from a signed-in session")
    if "admin" in body.scopes:
        account = await users.user_by_id(state.db, user_id)
        if account is None or not account.is_admin:
            raise ApiError(403, "forbidden", "only admin accounts get admin-scoped keys")
    key, secret = new_api_key()
    row = await users.create_api_key(
        state.db,
        state.keyring,
        user_id=user_id,
        key=key,
        secret=secret,
        label=body.label,
        scopes=sorted(set(body.scopes)),
    )
    return ApiKeyCreated(**_key_out(row).model_dump(), secret=secret)


async def api_keys(state: AppState, user_id: str) -> list[ApiKeyOut]:
    return [_key_out(row) for row in await users.api_keys_of(state.db, state.keyring, user_id)]


async def revoke_api_key(state: AppState, user_id: str, key_id: int) -> None:
    if not 0 < key_id < 2**63 or not await users.revoke_api_key(
        state.db, user_id=user_id, key_id=key_id
    ):
        raise ApiError(404, "not_found", "no such live API key")
    state.api_keys.clear()


async def open_listen_key(state: AppState, user_id: str, key: str) -> None:
    """Makes `key` the user's listen key (`xch:listen:{key}`), valid for an hour unless kept
    alive."""
    await state.redis.set(keys.listen_key(key), user_id, ex=LISTEN_KEY_TTL)


async def listen_key_owner(state: AppState, key: str) -> str | None:
    owner = await state.redis.get(keys.listen_key(key))
    return None if owner is None else as_text(owner)


async def keep_listen_key(state: AppState, key: str) -> None:
    await state.redis.expire(keys.listen_key(key), LISTEN_KEY_TTL)


async def close_listen_key(state: AppState, key: str) -> None:
    await state.redis.delete(keys.listen_key(key))
