"""The api's side of Binance's WebSocket API (`/ws-api/v3`, served by ws): ws holds no API
secret, so it has the api check a `userDataStream.subscribe.signature` request's signature
and open a listen key for its user, which ws then serves as the user-data stream.

Internal: the routes are outside `/api` (the ingress does not route them) and answer only a
bearer `service` token under the deployment's JWT secret with the subject `ws`
(xch.auth), which only ws mints. The client's address (its peer and X-Forwarded-For, as ws
received them) is what the rate limits and failure counts key on, as for REST.
"""

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.binance.errors import TOO_MANY_PARAMETERS, UNAUTHORIZED, BinanceError, bad, missing
from api.binance.params import verify, ws_api_call
from api.binance.render import json_response
from api.deps import State
from api.services import accounts
from api.state import AppState
from xch.auth import WS_SERVICE, InvalidToken, verify_token

PATH = "/internal/v1/ws-api/user-data-stream"
router = APIRouter(include_in_schema=False)

MAX_PARAMS = 16
MAX_FORWARDED = 8
_SIGNATURE_PARAMS = ("apiKey", "returnRateLimits")
"""What `userDataStream.subscribe.signature` reads besides `timestamp`, `recvWindow` and
`signature` (`returnRateLimits` is the WebSocket API's own, signed with the rest)."""


async def _from_ws(request: Request, state: AppState) -> dict[str, Any]:
    """The request's JSON body, once its service token is checked."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    try:
        if (
            scheme.lower() != "bearer"
            or verify_token(token, "service", state.settings.jwt_secret) != WS_SERVICE
        ):
            raise InvalidToken("not ws")
    except InvalidToken as error:
        raise BinanceError(
            401, UNAUTHORIZED, "You are not authorized to execute this request."
        ) from error
    try:
        body = await request.json()
    except ValueError as error:
        raise bad(-1100, "Malformed JSON.") from error
    if not isinstance(body, dict):
        raise bad(-1100, "Malformed JSON.")
    return body


def _listen_key_of(body: dict[str, Any]) -> str:
    key = body.get("listenKey")
    if not isinstance(key, str) or not key.isalnum() or len(key) > 128:
        raise missing("listenKey")
    return key


@router.post(PATH)
async def subscribe_signature(request: Request, state: State) -> JSONResponse:
    """`userDataStream.subscribe.signature`: its parameters checked as a signed request (the
    same rules as REST's, api.binance.params.verify), then a new listen key for the user."""
    body = await _from_ws(request, state)
    params, peer, forwarded = body.get("params"), body.get("peer"), body.get("forwardedFor", [])
    if not isinstance(params, dict) or not isinstance(peer, str) or not isinstance(forwarded, list):
        raise missing("params")
    if len(params) > MAX_PARAMS or len(forwarded) > MAX_FORWARDED:
        raise bad(TOO_MANY_PARAMETERS, "Too many parameters.")
    address = state.addresses.resolve(peer[:64], [str(hop)[:256] for hop in forwarded])
    call = ws_api_call(address, params)
    call.params.only(*_SIGNATURE_PARAMS)
    principal, _, _ = await verify(state, call, scope=None)
    key = secrets.token_hex(accounts.LISTEN_KEY_BYTES)
    await accounts.open_listen_key(state, principal.user_id, key)
    return json_response({"listenKey": key, "user": principal.user_id})


@router.put(PATH)
async def keep_subscription(request: Request, state: State) -> JSONResponse:
    """Keeps the listen key of a subscription another hour (ws calls this while it lasts)."""
    key = _listen_key_of(await _from_ws(request, state))
    if await accounts.listen_key_owner(state, key) is None:
        raise bad(-1125, "This listenKey does not exist.")
    await accounts.keep_listen_key(state, key)
    return json_response({})


@router.delete(PATH)
async def end_subscription(request: Request, state: State) -> JSONResponse:
    """Closes the listen key of a subscription that ended (unsubscribed, or disconnected)."""
    await accounts.close_listen_key(state, _listen_key_of(await _from_ws(request, state)))
    return json_response({})
