"""Binance-format WebSocket connections: raw streams at `/ws/<streamName>`, combined ones at
`/stream?streams=<a>/<b>` (the kinds of streams are ws.streams' Binance kinds, their payloads
in ws/binance_streams.py).
Requests and errors take Binance's shapes: `{"result": R, "id": ID}` and
`{"code": C, "msg": TEXT, "id": ID}`; the native protocol stays at `/ws`."""

import re
import time
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from ws.app import Connection
from ws.binance_streams import BinanceStream, symbol_of
from ws.binance_user import user_stream
from ws.feeds import MarketFeed
from ws.frames import FrameWriter
from ws.protocol import ErrorCode, ProtocolError
from ws.service import Service
from ws.streams import binance_kind, kind_of, match_binance
from ws.streams.kind import BinanceError
from xch import keys

MAX_ID = 2**63 - 1
_ID = re.compile(r"^[A-Za-z0-9-]{1,36}$")
"""A string request id: up to 36 letters, digits and hyphens (Binance's SDKs send UUIDs)."""
LISTEN_KEY = re.compile(r"^[A-Za-z0-9_-]{24,128}$")
"""A listen key (no `@`, unlike a stream name): the api's are 60 hex digits (Binance's
length) or, from the native `/api/v1/listen-key`, 32 URL-safe characters."""
_NO_REQUEST = object()
"""An initial subscription from the URL: no request to answer."""


# ---- connections ------------------------------------------------------------------------


def _answer(request_id: Any, result: Any) -> str:
    return orjson.dumps({"result": result, "id": request_id}).decode()


def _error(code: int, msg: str, request_id: Any = None) -> str:
    return orjson.dumps({"code": code, "msg": msg, "id": request_id}).decode()


def valid_id(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, int) and not isinstance(value, bool):
        return -MAX_ID - 1 <= value <= MAX_ID
    return isinstance(value, str) and bool(_ID.fullmatch(value))


class BinanceConnection(Connection):
    def __init__(
        self,
        service: Service,
        websocket: WebSocket,
        writer: FrameWriter | None,
        raw: bool,
        initial: list[str],
    ) -> None:
        super().__init__(service, websocket, writer)
        self.raw = raw
        self.initial = initial

    async def run(self) -> None:
        if self.initial:
            try:
                await self.add([await self.parse(name) for name in self.initial])
            except BinanceError as exc:
                self.hub.send(self.client, _error(exc.code, exc.msg))
        await super().run()

    async def parse(self, text: Any) -> BinanceStream:
        if isinstance(text, str) and LISTEN_KEY.fullmatch(text):
            return await self.user_data(text)
        if not isinstance(text, str) or len(text) > 64:
            raise BinanceError(2, "Invalid request: stream names are strings")
        found = match_binance(text)
        if found is None:
            raise BinanceError(2, f"Invalid request: unknown stream {text[:64]!r}")
        kind, match = found
        every = kind.every_market(self.raw)
        if every is not None:
            return every
        feed = await self.feed_of(match["symbol"].upper())
        if feed is None:
            raise BinanceError(2, f"Invalid request: unknown symbol {match['symbol']!r}")
        return kind.stream(feed, match, self.raw)

    async def user_data(self, listen_key: str) -> BinanceStream:
        """The user-data stream of a listen key (`POST /api/v3/userDataStream`), served on raw
        connections; the key authenticates the connection as its user."""
        if not self.raw:
            raise BinanceError(2, "Invalid request: user data streams are served at /ws/<key>")
        try:
            credential = await self.authenticate(None, listen_key, None)
        except ProtocolError as exc:
            if exc.code == ErrorCode.RATE_LIMITED:
                raise BinanceError(2, f"Invalid request: {exc.msg}") from exc
            raise BinanceError(2, "Invalid request: unknown or expired listen key") from exc
        if self.client.user not in (None, credential.user):
            raise BinanceError(2, "Invalid request: the connection serves another user")
        self.accept(credential)
        return user_stream(listen_key)

    def deauthenticate(self) -> None:
        """The listen key expired or was closed: Binance's `listenKeyExpired`, and the
        user-data stream ends."""
        credential = self.credential
        for stream in [s for s in self.client.streams.values() if s.private]:
            self.hub.unsubscribe(self.client, stream)
        self.client.user = self.credential = None
        event = {
            "e": "listenKeyExpired",
            "E": int(time.time() * 1000),
            "listenKey": credential.listen_key if credential else "",
        }
        self.hub.send(self.client, orjson.dumps(event).decode())

    async def feed_of(self, symbol: str) -> MarketFeed | None:
        for feed in self.service.feeds.values():
            if symbol_of(feed) == symbol:
                return feed
        # A market added since the last registry read: read it now.
        self.service.sync_markets(await self.service.client.hgetall(keys.MARKETS))
        for feed in self.service.feeds.values():
            if symbol_of(feed) == symbol:
                return feed
        return None

    async def add(self, streams: list[BinanceStream], request_id: Any = _NO_REQUEST) -> None:
        streams = list(dict.fromkeys(streams))
        try:
            await self.check(list(streams), request_id)
        except ProtocolError as exc:
            raise BinanceError(2, f"Invalid request: {exc.msg}") from exc
        for stream in streams:
            await kind_of(stream).prepare(self.service, stream, self.client.user)
        # From here on nothing awaits: no batch slips between the first message and the next.
        for stream in streams:
            self.hub.subscribe(self.client, stream)
        if request_id is not _NO_REQUEST:
            self.hub.send(self.client, _answer(request_id, None))
        for stream in streams:
            kind_of(stream).subscribed(self.service, stream, self.client.user)
            current, kind = self.service.feeds.get(stream.market), binance_kind(stream)
            if current is None or kind is None:
                continue
            for payload in kind.initial(current, stream):
                wrapped = payload if self.raw else {"stream": stream.name, "data": payload}
                self.hub.send(self.client, orjson.dumps(wrapped).decode())

    async def answer(self, text: str) -> None:
        request_id: Any = None
        try:
            try:
                message = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise BinanceError(3, f"Invalid JSON: {exc}") from exc
            if not isinstance(message, dict) or "method" not in message:
                raise BinanceError(2, "Invalid request: missing field `method`")
            if not valid_id(message.get("id")):
                raise BinanceError(2, "Invalid request: request ID must be an unsigned integer")
            request_id = message.get("id")
            reply = await self.dispatch_binance(message, request_id)
        except BinanceError as exc:
            self.service.metrics.protocol_errors.inc()
            self.hub.send(self.client, _error(exc.code, exc.msg, request_id))
            return
        if reply is not None:
            self.hub.send(self.client, reply)

    async def dispatch_binance(self, message: dict[str, Any], request_id: Any) -> str | None:
        method, params = message["method"], message.get("params")
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not params:
                raise BinanceError(2, "Invalid request: params must be a list of stream names")
            streams = [await self.parse(name) for name in params]
            if method == "SUBSCRIBE":
                await self.add(streams, request_id)
                return None
            for stream in streams:
                self.hub.unsubscribe(self.client, stream)
            return _answer(request_id, None)
        if method == "LIST_SUBSCRIPTIONS":
            return _answer(request_id, sorted(self.client.streams))
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            if not isinstance(params, list) or not params or params[0] != "combined":
                raise BinanceError(0, "Unknown property")
            if method == "GET_PROPERTY":
                return _answer(request_id, not self.raw)
            if len(params) != 2 or not isinstance(params[1], bool):
                raise BinanceError(1, "Invalid value type: expected Boolean")
            self.set_combined(params[1])
            return _answer(request_id, None)
        raise BinanceError(
            2,
            f"Invalid request: unknown variant {str(method)[:32]}, expected one of `SUBSCRIBE`, "
            "`UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`",
        )

    def set_combined(self, combined: bool) -> None:
        """Move every subscription to the other framing's topics."""
        self.raw = not combined
        for stream in list(self.client.streams.values()):
            assert isinstance(stream, BinanceStream)
            if stream.private:
                continue  # the user-data stream is raw on these connections
            self.hub.unsubscribe(self.client, stream)
            self.hub.subscribe(
                self.client,
                BinanceStream(
                    stream.kind, stream.market, stream.interval, stream.symbol,
                    stream.levels, stream.speed, self.raw,
                ),
            )  # fmt: skip


def _named(segment: str) -> bool:
    """A path segment that names a stream or a listen key; any other (`/ws/0`, as ccxt.pro
    numbers its connections before it SUBSCRIBEs) only labels the connection."""
    return "@" in segment or bool(LISTEN_KEY.fullmatch(segment))


def initial_streams(path: str, query: str) -> tuple[bool, list[str]] | None:
    """(raw, stream names) of a Binance connection's URL; None for other paths."""
    if path.startswith("/ws/"):
        names = [name for name in path.removeprefix("/ws/").split("/") if _named(name)]
        return True, names
    if path in ("/stream", "/stream/"):
        streams = parse_qs(query).get("streams", [""])[0]
        return False, [name for name in streams.split("/") if name]
    return None


def with_binance(app: ASGIApp) -> ASGIApp:
    """`app` with the Binance stream paths in front of it."""

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            found = initial_streams(scope["path"], scope.get("query_string", b"").decode())
            if found is not None:
                await binance_endpoint(scope, receive, send, *found)
                return
        await app(scope, receive, send)

    return dispatch


async def binance_endpoint(
    scope: Scope, receive: Receive, send: Send, raw: bool, names: list[str]
) -> None:
    websocket = WebSocket(scope, receive, send)
    service: Service = websocket.state.service
    await websocket.accept()
    service.metrics.connections.inc()
    try:
        await BinanceConnection(service, websocket, FrameWriter.of(send), raw, names).run()
    finally:
        service.metrics.connections.dec()
