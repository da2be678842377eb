"""Sign-up, sign-in, token refresh, API keys and WebSocket listen keys."""

import hashlib
import secrets

from fastapi import APIRouter, Depends, Response

from api import accounts
from api.deps import Reader, State, limit_ip
from api.errors import ApiError
from api.models import ApiKeyCreated, ApiKeyIn, ApiKeyOut, Credentials, RefreshIn, TokensOut
from api.routes import ERRORS
from api.security import new_api_key
from api.state import AppState
from xch import keys
from xch.auth import InvalidToken, issue_token, verify_token

router = APIRouter(tags=["accounts"], responses=ERRORS)

LISTEN_KEY_TTL = 3600


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


@router.post("/signup", status_code=201, dependencies=[Depends(limit_ip)])
async def signup(body: Credentials, state: State) -> TokensOut:
    email = body.email.lower()
    password_hash = await state.passwords.hash(body.password)
    user = await accounts.create_user(
        state.db,
        email=email,
        password_hash=password_hash,
        is_admin=email in {e.lower() for e in state.settings.admin_emails},
    )
    if user is None:
        raise ApiError(409, "email_taken", "an account with this email exists")
    return _tokens(state, user.id)


@router.post("/signin", dependencies=[Depends(limit_ip)])
async def signin(body: Credentials, state: State) -> TokensOut:
    user = await accounts.user_by_email(state.db, body.email.lower())
    # Hash even for an unknown email, so the answer's timing does not tell which it was.
    stored = user.password_hash if user else await state.passwords.hash("timing")
    if not await state.passwords.verify(stored, body.password) or user is None:
        raise ApiError(401, "bad_credentials", "wrong email or password")
    return _tokens(state, user.id)


def _spent_key(refresh_token: str) -> str:
    return f"xch:refresh-spent:{hashlib.sha256(refresh_token.encode()).hexdigest()}"


async def _spend(state: AppState, refresh_token: str) -> str:
    """The user of a valid refresh token, which this marks used: a refresh token works once
    (rotation), so a stolen one is worthless once its owner refreshed or signed out."""
    try:
        user_id = verify_token(refresh_token, "refresh", state.settings.jwt_secret)
    except InvalidToken as error:
        raise ApiError(401, "unauthorized", f"invalid refresh token: {error}") from error
    fresh = await state.redis.set(
        _spent_key(refresh_token), b"", nx=True, ex=state.settings.refresh_ttl_seconds
    )
    if not fresh:
        raise ApiError(401, "unauthorized", "this refresh token was already used")
    return user_id


@router.post("/refresh", dependencies=[Depends(limit_ip)])
async def refresh(body: RefreshIn, state: State) -> TokensOut:
    user_id = await _spend(state, body.refresh_token)
    if await accounts.user_by_id(state.db, user_id) is None:
        raise ApiError(401, "unauthorized", "the account no longer exists")
    return _tokens(state, user_id)


@router.post("/signout", status_code=204, dependencies=[Depends(limit_ip)])
async def signout(body: RefreshIn, state: State) -> Response:
    """Ends the session's refresh token; its access token expires on its own (15 min)."""
    await _spend(state, body.refresh_token)
    return Response(status_code=204)


def _key_out(row: accounts.ApiKeyRow) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id,
        key=row.key,
        label=row.label,
        scopes=list(row.scopes),
        created_at=int(row.created_at.timestamp() * 1000),
        revoked=row.revoked_at is not None,
    )


@router.post("/api-keys", status_code=201)
async def create_api_key(body: ApiKeyIn, user: Reader, state: State) -> ApiKeyCreated:
    if user.by_api_key:
        raise ApiError(403, "forbidden", "API keys are created from a signed-in session")
    if "admin" in body.scopes:
        account = await accounts.user_by_id(state.db, user.user_id)
        if account is None or not account.is_admin:
            raise ApiError(403, "forbidden", "only admin accounts get admin-scoped keys")
    key, secret = new_api_key()
    row = await accounts.create_api_key(
        state.db,
        user_id=user.user_id,
        key=key,
        secret=secret,
        label=body.label,
        scopes=sorted(set(body.scopes)),
    )
    return ApiKeyCreated(**_key_out(row).model_dump(), secret=secret)


@router.get("/api-keys")
async def list_api_keys(user: Reader, state: State) -> list[ApiKeyOut]:
    return [_key_out(row) for row in await accounts.api_keys_of(state.db, user.user_id)]


@router.delete("/api-keys/{key_id}", status_code=204)
async def revoke_api_key(key_id: int, user: Reader, state: State) -> Response:
    if not 0 < key_id < 2**63 or not await accounts.revoke_api_key(
        state.db, user_id=user.user_id, key_id=key_id
    ):
        raise ApiError(404, "not_found", "no such live API key")
    state.api_keys.clear()
    return Response(status_code=204)


@router.post("/listen-key", status_code=201)
async def create_listen_key(user: Reader, state: State) -> dict[str, str]:
    """A key for the WebSocket's private streams, valid for an hour."""
    key = secrets.token_urlsafe(24)
    await state.redis.set(keys.listen_key(key), user.user_id, ex=LISTEN_KEY_TTL)
    return {"listen_key": key}
