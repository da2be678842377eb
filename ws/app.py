"""The app: the WebSocket endpoint `/ws`, and Starlette with the lifespan, `/healthz`,
`/readyz` and `/metrics`.

Each connection answers requests in its own (the server's) task, with a TaskGroup for the
tasks it needs only at times: a sender while there is a backlog the hub could not write (it
also ends a client the hub cut off) and, once it has one, a watch on its credential. Whichever
ends the connection ends the others; an idle anonymous connection has no task but its own.
"""

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

import asyncpg
import jwt
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from runtime.heap import freeze_startup_heap
from runtime.redis_client import redis_client
from ws import protocol
from ws.config import Settings
from ws.frames import FrameWriter, Outgoing
from ws.hub import Client
from ws.metrics import CONTENT_TYPE, WsMetrics
from ws.protocol import ErrorCode, ProtocolError, Request, Stream
from ws.service import Service
from ws.streams import kind_of, stream_params
from xch import keys
from xch.auth import InvalidToken, verify_token

log = logging.getLogger(__name__)
CLOSE_POLICY = 1008
"""Policy violation: too slow to read, or too many requests."""


class _Ended(Exception):
    """One of a connection's tasks finished: the others are cancelled."""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Connection:
    def __init__(self, service: Service, websocket: WebSocket, writer: FrameWriter | None) -> None:
        self.service = service
        self.settings = service.settings
        self.websocket = websocket
        self.writer = writer
        self.credential: Credential | None = None
        self.tasks: asyncio.TaskGroup | None = None
        self.watching: asyncio.Task[None] | None = None
        self.sender: asyncio.Task[None] | None = None
        self.client = Client(service.settings.queue_size, writer, self.wake_sender)
        self.hub = service.hub
        self.address = service.addresses.of(websocket)
        self.flooded = False

    async def run(self) -> None:
        await self.auth_from_query()
        try:
            async with asyncio.TaskGroup() as group:
                self.tasks = group
                try:
                    self.watch()
                    if self.client.backlog or self.client.cut_off:  # before there was a group
                        self.wake_sender()
                    await self.receive_loop()
                finally:
                    self.tasks = None  # the connection ends: no task starts after this
                raise _Ended
        except* _Ended:
            pass
        finally:
            self.hub.remove(self.client)
        if self.flooded:
            await self.close_with("too_many_requests", "too many requests")
        elif self.client.cut_off:
            await self.close_with("slow", "too slow")

    async def ending(self, work: Coroutine[Any, Any, Any]) -> None:
        """A task of the connection's: when it ends, so does the connection."""
        try:
            await work
        finally:
            self.tasks = None  # no task starts after this one
        raise _Ended

    def watch(self) -> None:
        """Start `watch_credential` once the connection has a credential (a task fewer for
        each anonymous connection)."""
        if self.watching is None and self.tasks is not None and self.credential is not None:
            self.watching = self.tasks.create_task(self.ending(self.watch_credential()))

    async def close_with(self, reason: str, close_reason: str) -> None:
        """Tell a client cut off why, after what it is still owed (a flooding client's answers
        so far), unless its socket is full too: then just drop it."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await self.write_backlog()
                await self.websocket.send_text(protocol.notice("disconnect", reason=reason))
                await self.websocket.close(CLOSE_POLICY, close_reason)

    def wake_sender(self) -> None:
        """A sender task for the backlog the hub could not write, unless one runs."""
        if self.sender is None and self.tasks is not None:
            self.sender = self.tasks.create_task(self.send_backlog())

    async def send_backlog(self) -> None:
        """The sender: ends once the backlog is written, or with the connection if the client
        was cut off, stalled or is gone."""
        if await self.write_backlog():
            self.sender = None
            return
        self.tasks = None  # the connection ends: no task starts after this one
        raise _Ended

    async def write_backlog(self) -> bool:
        """Write the backlog (the socket was full, or ASGI sends) until it is written (True):
        whatever queued up meanwhile goes in one go, under one timeout (a client that cannot
        take it within `send_timeout` is stalled: cut off). False: cut off or gone."""
        client, metrics = self.client, self.service.metrics
        while client.backlog and not client.cut_off:
            batch = client.take()
            client.sending = True
            try:
                await self.write(batch, self.settings.send_timeout)
            except TimeoutError:
                metrics.slow_clients.labels("disconnect").inc()
                client.cut()
                return False
            except Exception:  # the peer is gone; the receiver sees the disconnect too
                return False
            finally:
                client.sending = False
            metrics.messages_out.inc(len(batch))
        return not client.cut_off

    async def write(self, batch: list[Outgoing], timeout: float) -> None:
        if self.writer is not None:
            await self.writer.write(batch, timeout)
            return
        async with asyncio.timeout(timeout):
            for text, _ in batch:
                await self.websocket.send_text(text)

    async def receive_loop(self) -> None:
        """Answer each message in turn; a client sending more than `max_messages_per_second`
        within one second is cut off (as Binance does), so that what one connection can make
        the replica do is bounded."""
        limit, second, count = self.settings.max_messages_per_second, 0, 0
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            now = int(time.monotonic())
            second, count = now, (count + 1 if now == second else 1)
            if count > limit:
                self.service.metrics.flooding_clients.inc()
                self.flooded = True
                return
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode(errors="replace")
            await self.answer(text)

    async def answer(self, text: str) -> None:
        request_id = None
        try:
            request = protocol.parse_request(text)
            request_id = request.id
            value = await self.dispatch(request)
        except ProtocolError as exc:
            if exc.request_id is None:
                exc.request_id = request_id
            self.service.metrics.protocol_errors.inc()
            self.hub.send(self.client, protocol.error(exc))
            return
        except RedisError as exc:
            log.warning("request failed: %s", exc)
            failure = ProtocolError(ErrorCode.UNAVAILABLE, "temporarily unavailable", request_id)
            self.hub.send(self.client, protocol.error(failure))
            return
        if value is not _ANSWERED:
            self.hub.send(self.client, protocol.result(request.id, value))

    async def dispatch(self, request: Request) -> Any:
        if request.method == "SUBSCRIBE":
            await self.subscribe(request)
            return _ANSWERED
        if request.method == "UNSUBSCRIBE":
            for stream in stream_params(request):
                self.hub.unsubscribe(self.client, stream)
            return None
        if request.method == "LIST_SUBSCRIPTIONS":
            return sorted(self.client.streams)
        if request.method == "AUTH":
            return await self.auth(request)
        return "pong"

    # ---- subscriptions ------------------------------------------------------------------

    async def subscribe(self, request: Request) -> None:
        streams = list(dict.fromkeys(stream_params(request)))
        await self.check(streams, request.id)
        # What needs I/O first; none of it changes what the client is subscribed to.
        for stream in streams:
            await self.prepare(stream)
        # From here on nothing awaits, so no event slips between a snapshot and its diffs.
        for stream in streams:
            self.hub.subscribe(self.client, stream)
        self.hub.send(self.client, protocol.result(request.id))
        user = self.client.user
        for stream in streams:
            self.hub.send_all(self.client, self.service.snapshots(stream, user))
            kind_of(stream).subscribed(self.service, stream, user)

    async def check(self, streams: list[Stream], request_id: Any) -> None:
        total = len(set(self.client.streams) | {stream.name for stream in streams})
        if total > self.settings.max_streams:
            raise ProtocolError(
                ErrorCode.TOO_MANY_STREAMS,
                f"at most {self.settings.max_streams} streams per connection",
                request_id,
            )
        for stream in streams:
            try:
                await kind_of(stream).authorize(self.service, stream, self.client.user)
            except ProtocolError as exc:
                exc.request_id = request_id
                raise

    async def prepare(self, stream: Stream) -> None:
        await kind_of(stream).prepare(self.service, stream, self.client.user)

    # ---- authentication -----------------------------------------------------------------

    async def auth_from_query(self) -> None:
        params = self.websocket.query_params
        token, listen_key = params.get("token"), params.get("listen_key")
        if token is None and listen_key is None:
            return
        try:
            self.accept(await self.authenticate(token, listen_key, None))
        except ProtocolError as exc:
            self.hub.send(self.client, protocol.error(exc))
        except RedisError:
            failure = ProtocolError(ErrorCode.UNAVAILABLE, "temporarily unavailable")
            self.hub.send(self.client, protocol.error(failure))

    async def auth(self, request: Request) -> dict[str, str]:
        params = request.params
        if not isinstance(params, dict):
            raise ProtocolError(
                ErrorCode.INVALID_PARAMS,
                'params must be {"token": JWT} or {"listen_key": KEY}',
                request.id,
            )
        credential = await self.authenticate(
            params.get("token"), params.get("listen_key"), request.id
        )
        if self.client.user not in (None, credential.user) and any(
            stream.private for stream in self.client.streams.values()
        ):
            raise ProtocolError(
                ErrorCode.INVALID_PARAMS,
                "unsubscribe the private streams before switching users",
                request.id,
            )
        self.accept(credential)
        return {"user": credential.user}

    def accept(self, credential: "Credential") -> None:
        """The connection is now `credential`'s user, and `watch_credential` re-checks it.
        Only an accepted credential is kept: a refused one must not replace the credential
        whose revocation ends the current user's private streams."""
        self.credential = credential
        self.client.user = credential.user
        self.watch()

    async def authenticate(self, token: Any, listen_key: Any, request_id: Any) -> "Credential":
        """What vouches for a user (a valid JWT or listen key); changes nothing but the count
        of refused credentials, against the client's address and shared with the api
        (runtime.auth_failures): past its allowance each refusal is RATE_LIMITED, with the
        time to wait, instead of AUTH_FAILED."""
        if isinstance(token, str) and token:
            secret = self.settings.jwt_secret
            if not secret:
                message = "invalid token: JWT authentication is not configured"
                raise ProtocolError(ErrorCode.AUTH_FAILED, message, request_id)
            try:
                user = verify_token(token, "access", secret)
            except InvalidToken as exc:
                raise await self.refused(f"invalid token: {exc}", request_id) from exc
            expires = jwt.decode(token, options={"verify_signature": False})["exp"]
            return Credential(user, expires_at=float(expires))
        if isinstance(listen_key, str) and 0 < len(listen_key) <= 256:
            raw = await self.service.client.get(keys.listen_key(listen_key))
            if raw is not None:
                return Credential(_text(raw), listen_key=listen_key)
            raise await self.refused("unknown or expired listen key", request_id)
        raise ProtocolError(ErrorCode.AUTH_FAILED, "a token or a listen key is needed", request_id)

    async def refused(self, message: str, request_id: Any) -> ProtocolError:
        """The error for a refused credential, after counting it against the address."""
        settings, failures = self.settings, self.service.metrics.auth_failures
        wait_ms = await self.service.failures.failed(
            ("ip", self.address, settings.auth_failures_ip)
        )
        if wait_ms > 0:
            failures.labels("throttled").inc()
            seconds = max(1, math.ceil(wait_ms / 1000))
            message = f"too many failed authentications: wait {seconds} s before trying again"
            return ProtocolError(ErrorCode.RATE_LIMITED, message, request_id)
        failures.labels("refused").inc()
        return ProtocolError(ErrorCode.AUTH_FAILED, message, request_id)

    async def watch_credential(self) -> None:
        """Private streams last as long as what authenticated them: a JWT until it expires, a
        listen key while the api keeps it (its TTL, or revoked)."""
        while True:
            await asyncio.sleep(self.settings.auth_check_seconds)
            credential = self.credential
            if credential is not None and not await self.still_valid(credential):
                self.deauthenticate()

    async def still_valid(self, credential: "Credential") -> bool:
        if credential.expires_at is not None:
            return time.time() < credential.expires_at
        try:
            raw = await self.service.client.get(keys.listen_key(credential.listen_key))
        except RedisError:
            return True  # not known to be revoked; checked again soon
        return raw is not None and _text(raw) == credential.user

    def deauthenticate(self) -> None:
        private = [stream for stream in self.client.streams.values() if stream.private]
        for stream in private:
            self.hub.unsubscribe(self.client, stream)
        self.client.user = self.credential = None
        notice = protocol.notice("auth_expired", streams=sorted(s.name for s in private))
        self.hub.send(self.client, notice)


@dataclass(frozen=True, slots=True)
class Credential:
    user: str
    expires_at: float | None = None
    listen_key: str = ""


_ANSWERED = object()


async def websocket_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
    """Served outside Starlette's routing so that `send` is the server's own (FrameWriter)."""
    websocket = WebSocket(scope, receive, send)
    service: Service = websocket.state.service
    await websocket.accept()
    service.metrics.connections.inc()
    try:
        await Connection(service, websocket, FrameWriter.of(send)).run()
    finally:
        service.metrics.connections.dec()


async def healthz(request: HttpRequest) -> Response:
    return PlainTextResponse("ok\n")


async def readyz(request: HttpRequest) -> Response:
    service: Service = request.state.service
    if service.ready:
        return PlainTextResponse("ready\n")
    return PlainTextResponse("not ready\n", status_code=503)


async def metrics_endpoint(request: HttpRequest) -> Response:
    service: Service = request.state.service
    return Response(service.metrics.render(), media_type=CONTENT_TYPE)


def create_app(settings: Settings | None = None) -> ASGIApp:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        client = redis_client(settings.redis_url)
        pool = None
        if settings.postgres_dsn:
            pool = await asyncpg.create_pool(settings.postgres_dsn, min_size=0, max_size=4)
        try:
            async with asyncio.TaskGroup() as tasks:
                service = Service(settings, client, pool, WsMetrics(), tasks)
                background = service.start()
                freeze_startup_heap()
                try:
                    yield {"service": service}
                finally:
                    service.stop()
                    for task in background:
                        task.cancel()
                    await service.internal_api.aclose()
        finally:
            if pool is not None:
                await pool.close()
            await client.aclose()

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
        ],
        lifespan=lifespan,
    )

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/ws":
            await websocket_endpoint(scope, receive, send)
        else:
            await app(scope, receive, send)

    return dispatch
