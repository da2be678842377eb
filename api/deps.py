"""Request dependencies as `Annotated` aliases: the shared state, the caller and its scopes.

A caller is authenticated by a bearer access token (a user's own session: every scope but
admin, which needs an admin account) or by a signed API-key request (the key's scopes). Each
authenticated request counts against its user's rate limit, every request against its IP's
(the client's address: runtime/addresses.py); a refused credential counts as a failure of its
address and of the account it named (api.ratelimit.AuthFailures), never against the limits.
"""

import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request

from api import users
from api.digits import ascii_digits
from api.errors import ApiError
from api.metrics import API_KEY_LOOKUPS
from api.models import MarketName
from api.security import signature, signature_matches
from api.state import AppState
from api.users import ApiKeyRow
from runtime.bounded import put_newest
from xch.auth import InvalidToken, verify_token

SESSION_SCOPES = frozenset({"read", "trade"})


async def get_state(request: Request) -> AppState:
    """Async on purpose: FastAPI runs a plain-function dependency in a worker thread."""
    state: AppState = request.state.app
    return state


State = Annotated[AppState, Depends(get_state)]
OptionalMarket = Annotated[MarketName | None, Query()]
"""A query parameter narrowing a listing to one market."""


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    scopes: frozenset[str]
    by_api_key: bool


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def client_address(request: Request, state: AppState) -> str:
    return state.addresses.of(request)


def ip_counter(request: Request, state: AppState) -> tuple[str, str, int]:
    return address_counter(state, state.addresses.of(request))


def address_counter(state: AppState, address: str) -> tuple[str, str, int]:
    return ("ip", address, state.settings.rate_limit_ip)


async def limit_ip(request: Request, state: State) -> None:
    """The per-IP limit of public routes (authenticated ones count it in `authenticate`)."""
    await state.limiter.hit(ip_counter(request, state))


async def count_failure(state: AppState, address: str, user_id: str = "") -> None:
    """`AppState.count_failure` of a client's address: ApiError 429 once it or the account
    must wait."""
    await state.count_failure(address, user_id)


async def _refused(request: Request, state: AppState, message: str, user_id: str = "") -> ApiError:
    """The 401 for a refused credential, after counting it (`count_failure`)."""
    await count_failure(state, client_address(request, state), user_id)
    return _unauthorized(message)


API_KEYS_CACHED = 10_000
"""Most API keys (known or not) a process remembers: a flood of made-up keys must not grow it."""


async def api_key_row(state: AppState, address: str, key: str) -> ApiKeyRow | None:
    """The key's row, None if there is none: from the cache, or from PostgreSQL unless the
    client's address must wait (ApiError 429: a flood of made-up keys stops reaching it)."""
    cached = state.api_keys.get(key)
    now = time.monotonic()
    if cached is not None and cached[1] > now:
        return cached[0]
    state.failures.check_here("ip", address)
    row = await users.api_key(state.db, state.keyring, key)
    API_KEY_LOOKUPS.labels("true" if row else "false").inc()
    expires = now + state.settings.api_key_cache_seconds
    put_newest(state.api_keys, key, (row, expires), API_KEYS_CACHED)
    return row


def signed_path(request: Request) -> str:
    """The path and query a signature covers: `request.url`'s path (the decoded path, its
    '?', '#' and '\\' escaped again) and query as sent, without building the whole URL (a
    tenth of an order's authentication)."""
    scope = request.scope
    path: str = scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    query: bytes = scope["query_string"]
    return f"{path}?{query.decode(errors='replace')}" if query else path


async def _signed(request: Request, state: AppState, key: str) -> tuple[Principal, str]:
    """The key's principal and the replay-guard key of this request's signature."""
    timestamp = request.headers.get("x-api-timestamp", "")
    given = request.headers.get("x-api-signature", "")
    if not ascii_digits(timestamp, 16) or not given:
        raise _unauthorized("signed requests need X-API-TIMESTAMP and X-API-SIGNATURE")
    window = state.settings.recv_window_ms
    if abs(int(timestamp) - time.time() * 1000) > window:
        raise _unauthorized("X-API-TIMESTAMP is outside the receive window")
    row = await api_key_row(state, client_address(request, state), key)
    if row is None or row.revoked_at is not None:
        raise await _refused(request, state, "unknown or revoked API key")
    expected = signature(
        row.secret, timestamp, request.method, signed_path(request), await request.body()
    )
    if not signature_matches(expected, given.lower()):
        raise await _refused(request, state, "bad signature", row.user_id)
    return Principal(row.user_id, frozenset(row.scopes), by_api_key=True), f"xch:sig:{expected}"


async def authenticate(request: Request, state: State) -> Principal:
    """The caller, after counting the request against its IP's and its user's limits and,
    for a signed request, claiming its signature: one Redis round trip for all three. A
    refused credential is counted instead (`count_failure`)."""
    key = request.headers.get("x-api-key")
    claim = ""
    if key:
        principal, claim = await _signed(request, state, key)
    else:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("missing bearer token or API key")
        try:
            user_id = verify_token(token, "access", state.settings.jwt_secret)
        except InvalidToken as error:
            raise await _refused(request, state, f"invalid token: {error}") from error
        principal = Principal(user_id, SESSION_SCOPES, by_api_key=False)
    fresh = await state.limiter.hit(
        ip_counter(request, state),
        ("user", principal.user_id, state.settings.rate_limit_user),
        # A signature can only be used once within the window in which its timestamp is valid.
        claim=claim,
        claim_ms=2 * state.settings.recv_window_ms,
    )
    if not fresh:
        raise _unauthorized("replayed request")
    return principal


async def _reader(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    return require(principal, "read")


async def _trader(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    return require(principal, "trade")


async def _admin(principal: Annotated[Principal, Depends(authenticate)], state: State) -> Principal:
    if principal.by_api_key:
        require(principal, "admin")
    user = await users.user_by_id(state.db, principal.user_id)
    if user is None or not user.is_admin:
        raise ApiError(403, "forbidden", "an admin account is needed")
    return principal


def require(principal: Principal, scope: str) -> Principal:
    if scope not in principal.scopes:
        raise ApiError(403, "forbidden", f"this API key lacks the {scope!r} scope")
    return principal


Reader = Annotated[Principal, Depends(_reader)]
Trader = Annotated[Principal, Depends(_trader)]
Admin = Annotated[Principal, Depends(_admin)]
