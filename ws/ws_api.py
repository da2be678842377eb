"""Binance's WebSocket API at `/ws-api/v3`, for what clients open it for: the user-data
stream (ccxt.pro's `watch_orders`, `watch_balance`, `watch_my_trades`; the `websocket_api`
client of Binance's SDK).

Requests are `{"id", "method", "params"}`; answers `{"id", "status": 200, "result",
"rateLimits"}` or `{"id", "status", "error": {"code", "msg"}, "rateLimits"}` with Binance's
codes (`rateLimits` is left out when the request sets `returnRateLimits` false). Methods:
`ping`, `time`, `userDataStream.subscribe.signature` (the api checks the signature: ws holds
no API secret, ws.internal_api) and `userDataStream.unsubscribe`. A subscription's events
come as `{"subscriptionId": 0, "event": EVENT}`, the events of `/ws/<listenKey>`
(ws.binance_user), and `eventStreamTerminated` if it ends from the server's side.
"""

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from ws.app import Connection, Credential
from ws.binance import valid_id
from ws.binance_user import SUBSCRIPTION_ID, ws_api_stream
from ws.frames import FrameWriter
from ws.protocol import ProtocolError
from ws.service import Service
from ws.streams import kind_of

log = logging.getLogger(__name__)

PATHS = ("/ws-api/v3", "/ws-api/v3/")
KEEP_ALIVE_SECONDS = 1800.0
"""How often a subscription's listen key is kept alive (it lasts an hour, api.services.accounts)."""
MAX_PARAMS = 16


class WsApiError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg


def _bad(code: int, msg: str) -> WsApiError:
    return WsApiError(400, code, msg)


def _frame(request_id: Any, body: dict[str, Any], rate_limits: bool) -> str:
    frame = {"id": request_id, **body}
    if rate_limits:
        frame["rateLimits"] = []
    return orjson.dumps(frame).decode()


class WsApiConnection(Connection):
    def __init__(self, service: Service, websocket: WebSocket, writer: FrameWriter | None) -> None:
        super().__init__(service, websocket, writer)
        self.listen_key = ""
        self.kept_at = 0.0

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            await self.end_subscription()

    async def auth_from_query(self) -> None:
        """A connection here authenticates by a signed subscription only."""

    async def answer(self, text: str) -> None:
        request_id: Any = None
        rate_limits = True
        try:
            try:
                message = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise _bad(-1100, "Malformed request: not JSON.") from exc
            if not isinstance(message, dict) or not valid_id(message.get("id")):
                raise _bad(-1100, "Malformed request: invalid 'id'.")
            request_id = message.get("id")
            params = message.get("params")
            params = {} if params is None else params
            if not isinstance(params, dict):
                raise _bad(-1100, "Malformed request: 'params' must be an object.")
            rate_limits = params.get("returnRateLimits") not in (False, "false")
            try:
                result = await self.dispatch_ws_api(message.get("method"), params)
            except RedisError as exc:
                log.warning("request failed: %s", exc)
                raise WsApiError(503, -1001, "Internal error; please try again.") from exc
        except WsApiError as exc:
            self.service.metrics.protocol_errors.inc()
            error = {"status": exc.status, "error": {"code": exc.code, "msg": exc.msg}}
            self.hub.send(self.client, _frame(request_id, error, rate_limits))
            return
        self.hub.send(
            self.client, _frame(request_id, {"status": 200, "result": result}, rate_limits)
        )

    async def dispatch_ws_api(self, method: Any, params: dict[str, Any]) -> Any:
        if method == "ping":
            return {}
        if method == "time":
            return {"serverTime": int(time.time() * 1000)}
        if method == "userDataStream.subscribe.signature":
            await self.subscribe_signature(params)
            return {"subscriptionId": SUBSCRIPTION_ID}
        if method == "userDataStream.unsubscribe":
            await self.end_subscription()
            return {}
        raise _bad(-1020, f"Unknown method {str(method)[:64]!r}: this operation is not supported.")

    async def subscribe_signature(self, params: dict[str, Any]) -> None:
        if self.listen_key:
            raise _bad(-1020, "This connection already has a user data subscription.")
        if len(params) > MAX_PARAMS:
            raise _bad(-1101, "Too many parameters.")
        peer = self.websocket.client.host if self.websocket.client else "unknown"
        forwarded = self.websocket.headers.getlist("x-forwarded-for")
        answer = await self.service.internal_api.subscribe(params, peer, forwarded)
        if answer.error is not None:
            raise WsApiError(*answer.error)
        listen_key = str(answer.body.get("listenKey", ""))
        try:
            credential = await self.authenticate(None, listen_key, None)
        except ProtocolError as exc:
            raise WsApiError(503, -1001, "Internal error; please try again.") from exc
        stream = ws_api_stream(listen_key)
        self.accept(credential)
        await kind_of(stream).prepare(self.service, stream, credential.user)
        self.listen_key, self.kept_at = listen_key, time.monotonic()
        # Nothing awaits from here until the answer is queued: every event comes after it.
        self.hub.subscribe(self.client, stream)
        kind_of(stream).subscribed(self.service, stream, credential.user)

    async def end_subscription(self) -> None:
        """The subscription (if any) ends here: its listen key is closed at the api."""
        listen_key, self.listen_key = self.listen_key, ""
        if not listen_key:
            return
        self.hub.unsubscribe(self.client, ws_api_stream(listen_key))
        self.client.user = self.credential = None
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self.service.internal_api.close(listen_key)

    async def still_valid(self, credential: Credential) -> bool:
        """The listen key exists; every `KEEP_ALIVE_SECONDS` it is kept alive at the api."""
        if time.monotonic() - self.kept_at < KEEP_ALIVE_SECONDS:
            return await super().still_valid(credential)
        kept = await self.service.internal_api.keep(credential.listen_key)
        if kept:
            self.kept_at = time.monotonic()
        return kept is not False  # not known to be gone: checked again soon

    def deauthenticate(self) -> None:
        """The subscription's key is gone: Binance's `eventStreamTerminated`."""
        if self.listen_key:
            self.hub.unsubscribe(self.client, ws_api_stream(self.listen_key))
        self.listen_key = ""
        self.client.user = self.credential = None
        event = {"e": "eventStreamTerminated", "E": int(time.time() * 1000)}
        self.hub.send(
            self.client, orjson.dumps({"subscriptionId": SUBSCRIPTION_ID, "event": event}).decode()
        )


async def ws_api_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    websocket = WebSocket(scope, receive, send)
    service: Service = websocket.state.service
    await websocket.accept()
    service.metrics.connections.inc()
    try:
        await WsApiConnection(service, websocket, FrameWriter.of(send)).run()
    finally:
        service.metrics.connections.dec()


def with_ws_api(app: ASGIApp) -> ASGIApp:
    """`app` with the WebSocket API's path in front of it."""

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] in PATHS:
            await ws_api_endpoint(scope, receive, send)
            return
        await app(scope, receive, send)

    return dispatch
