"""Sign-up, sign-in, token refresh, API keys and WebSocket listen keys."""

import secrets

from fastapi import APIRouter, Depends, Request, Response

from api.deps import Reader, State, client_address, limit_ip
from api.errors import ERRORS
from api.models import ApiKeyCreated, ApiKeyIn, ApiKeyOut, Credentials, RefreshIn, TokensOut
from api.services import accounts

router = APIRouter(tags=["accounts"], responses=ERRORS)


@router.post("/signup", status_code=201, dependencies=[Depends(limit_ip)])
async def signup(body: Credentials, state: State) -> TokensOut:
    return await accounts.sign_up(state, body)


@router.post("/signin", dependencies=[Depends(limit_ip)])
async def signin(body: Credentials, state: State, request: Request) -> TokensOut:
    return await accounts.sign_in(state, body, client_address(request, state))


@router.post("/refresh", dependencies=[Depends(limit_ip)])
async def refresh(body: RefreshIn, state: State, request: Request) -> TokensOut:
    return await accounts.refresh(state, body.refresh_token, client_address(request, state))


@router.post("/signout", status_code=204, dependencies=[Depends(limit_ip)])
async def signout(body: RefreshIn, state: State, request: Request) -> Response:
    """Ends the session's refresh token; its access token expires on its own (15 min)."""
    await accounts.sign_out(state, body.refresh_token, client_address(request, state))
    return Response(status_code=204)


@router.post("/api-keys", status_code=201)
async def create_api_key(body: ApiKeyIn, user: Reader, state: State) -> ApiKeyCreated:
    return await accounts.create_api_key(state, user.user_id, user.by_api_key, body)


@router.get("/api-keys")
async def list_api_keys(user: Reader, state: State) -> list[ApiKeyOut]:
    return await accounts.api_keys(state, user.user_id)


@router.delete("/api-keys/{key_id}", status_code=204)
async def revoke_api_key(key_id: int, user: Reader, state: State) -> Response:
    await accounts.revoke_api_key(state, user.user_id, key_id)
    return Response(status_code=204)


@router.post("/listen-key", status_code=201)
async def create_listen_key(user: Reader, state: State) -> dict[str, str]:
    """A key for the WebSocket's private streams, valid for an hour."""
    key = secrets.token_urlsafe(24)
    await accounts.open_listen_key(state, user.user_id, key)
    return {"listen_key": key}
