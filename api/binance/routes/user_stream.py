"""The /api/v3 user-data stream routes: open, keep alive and close a listen key."""

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.binance.errors import bad
from api.binance.params import Params, keyed
from api.binance.render import json_response
from api.deps import State
from api.services import accounts
from api.state import AppState

router = APIRouter(prefix="/api/v3", include_in_schema=False)


async def _own_listen_key(state: AppState, user: str, params: Params) -> str:
    key = params.required("listenKey")
    owner = await accounts.listen_key_owner(state, key) if key.isalnum() else None
    if owner != user:
        raise bad(-1125, "This listenKey does not exist.")
    return key


@router.post("/userDataStream")
async def new_listen_key(request: Request, state: State) -> JSONResponse:
    """A listen key for the user-data stream at ws `/ws/<listenKey>`: the native api's
    WebSocket listen key (`xch:listen:{key}`), valid for an hour unless kept alive."""
    user, params = await keyed(request, state)
    params.only()
    key = secrets.token_hex(accounts.LISTEN_KEY_BYTES)
    await accounts.open_listen_key(state, user, key)
    return json_response({"listenKey": key})


@router.put("/userDataStream")
async def keep_listen_key(request: Request, state: State) -> JSONResponse:
    user, params = await keyed(request, state)
    params.only("listenKey")
    key = await _own_listen_key(state, user, params)
    await accounts.keep_listen_key(state, key)
    return json_response({})


@router.delete("/userDataStream")
async def close_listen_key(request: Request, state: State) -> JSONResponse:
    user, params = await keyed(request, state)
    params.only("listenKey")
    await accounts.close_listen_key(state, await _own_listen_key(state, user, params))
    return json_response({})
