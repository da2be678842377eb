"""One Redis connection that every task of a process shares, commands pipelined.

redis-py spends about 35 µs of CPU on each command (a pool checkout, a health check, a retry
wrapper, a socket write and a read per command): for the api, whose order costs two or three
scripts, that was a fifth of its CPU. Here a command is packed, queued, and written with
every other command queued in the same turn of the event loop (one write for all of them);
the replies come back in order on the same connection, parsed by hiredis, each to the
future of the command that asked. About 3 µs a command under load.

What it shares with the redis-py client it is made from: the address, credentials, database
and TLS settings. What it keeps of its behaviour: replies as bytes, an error reply raised as
`redis.exceptions.ResponseError`, a lost connection as `redis.exceptions.ConnectionError` for
every command waiting on it (its outcome unknown, never retried), a connection made again by
the next command. A caller cancelled while it waits leaves its reply to be read and dropped.
"""

import asyncio
import hashlib
import logging
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import hiredis
import redis.asyncio
import redis.exceptions
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection

from runtime.redis_client import CONNECT_TIMEOUT_SECONDS

Arg = bytes | str | int
log = logging.getLogger("runtime.redis_pipe")


@dataclass(frozen=True)
class Address:
    host: str
    port: int
    path: str | None
    """A Unix socket's, instead of host and port."""
    username: str | None
    password: str | None
    db: int
    tls: ssl.SSLContext | None


def address_of(client: redis.asyncio.Redis) -> Address:
    """Where `client` connects and as whom."""
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    tls = None
    if issubclass(pool.connection_class, SSLConnection):
        tls = pool.connection_class(**kwargs).ssl_context.get()
    unix = issubclass(pool.connection_class, UnixDomainSocketConnection)
    return Address(
        host=kwargs.get("host", "localhost"),
        port=int(kwargs.get("port", 6379)),
        path=kwargs["path"] if unix else None,
        username=kwargs.get("username"),
        password=kwargs.get("password"),
        db=int(kwargs.get("db", 0)),
        tls=tls,
    )


def _pack(args: Sequence[Arg]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


class _Protocol(asyncio.Protocol):
    """The connection: writes what was queued this turn, hands each reply to its future,
    and a reply no command waits for (a subscribed channel's message) to `on_push`."""

    def __init__(self, on_push: Callable[[Any], None] | None = None) -> None:
        self.reader = hiredis.Reader()
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.queued: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None
        self.on_push = on_push
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport is a transport without asyncio.Transport among its bases.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            if not self.waiting and self.on_push is not None:
                self.on_push(reply)
                continue
            future = self.waiting.popleft()
            if future.done():  # its caller was cancelled
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(_response_error(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = redis.exceptions.ConnectionError(f"Redis connection lost: {exc or 'closed'}")
        self.transport = None
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(self.lost)
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, command: bytes) -> asyncio.Future[Any]:
        if self.lost is not None:
            raise self.lost
        if not self.queued:
            asyncio.get_running_loop().call_soon(self.flush)
        self.queued.append(command)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        return future

    def flush(self) -> None:
        if self.transport is not None and self.queued:
            self.transport.write(b"".join(self.queued))
        self.queued.clear()


def _response_error(message: str) -> redis.exceptions.ResponseError:
    if message.startswith("NOSCRIPT"):
        return redis.exceptions.NoScriptError(message)
    return redis.exceptions.ResponseError(message)


class PipelinedRedis:
    """Commands over one shared connection (see the module's docstring)."""

    def __init__(self, address: Address) -> None:
        self.address = address
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def execute(self, *args: Arg) -> Any:
        protocol = await self._connected()
        return await protocol.send(_pack(args))

    def register_script(self, script: str) -> "PipelinedScript":
        return PipelinedScript(self, script)

    async def aclose(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None

    async def _connected(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and protocol.lost is None:
            return protocol
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is None or self._protocol.lost is not None:
                self._protocol = await _connect(self.address, _Protocol)
            return self._protocol


async def _connect(address: Address, protocol_factory: Callable[[], _Protocol]) -> _Protocol:
    """A connection to `address`, logged in, its database chosen."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
            if address.path is not None:
                _, protocol = await loop.create_unix_connection(protocol_factory, address.path)
            else:
                _, protocol = await loop.create_connection(
                    protocol_factory, address.host, address.port, ssl=address.tls
                )
    except (OSError, TimeoutError) as error:
        where = address.path or f"{address.host}:{address.port}"
        raise redis.exceptions.ConnectionError(
            f"cannot connect to Redis at {where}: {error}"
        ) from error
    try:
        await _introduce(address, protocol)
    except BaseException:
        if protocol.transport is not None:
            protocol.transport.close()
        raise
    return protocol


async def _introduce(address: Address, protocol: _Protocol) -> None:
    """Log in and choose the database, as redis-py does on connecting."""
    hello: list[asyncio.Future[Any]] = []
    if address.password is not None:
        credentials = [address.username or "default", address.password]
        hello.append(protocol.send(_pack(["AUTH", *credentials])))
    if address.db:
        hello.append(protocol.send(_pack(["SELECT", address.db])))
    async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
        for answer in hello:
            await answer


class PipelinedScript:
    """A Lua script called by its SHA1, loaded again (SCRIPT LOAD: the services' ACL users
    may not EVAL) when Redis does not know it, after a restart or SCRIPT FLUSH; called like
    redis-py's `AsyncScript`."""

    def __init__(self, client: PipelinedRedis, source: str) -> None:
        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, keys: Sequence[Arg] = (), args: Sequence[Arg] = ()) -> Any:
        try:
            return await self.client.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            await self.client.execute("SCRIPT", "LOAD", self.source)
            return await self.client.execute("EVALSHA", self.sha, len(keys), *keys, *args)


class PipelinedSubscription:
    """A channel's messages, each handed to `on_message` as soon as it is parsed, on a
    connection of its own (a subscribed connection takes no other commands). redis-py's
    PubSub costs a task's turn, a parser's round trip and a dict per message; here a message
    is one call. `run` subscribes, and subscribes again after a lost connection (messages
    published meanwhile are lost, as with any pub/sub subscriber); `subscribed` is set while
    it is."""

    def __init__(self, address: Address, channel: str, on_message: Callable[[bytes], None]) -> None:
        self.address = address
        self.channel = channel
        self.on_message = on_message
        self.subscribed = asyncio.Event()

    async def run(self, retry_seconds: float = 0.2) -> None:
        """Deliver messages until cancelled."""
        while True:
            try:
                protocol = await _connect(self.address, lambda: _Protocol(self._pushed))
                try:
                    await protocol.send(_pack(["SUBSCRIBE", self.channel]))
                    self.subscribed.set()
                    await protocol.closed
                finally:
                    if protocol.transport is not None:
                        protocol.transport.close()
                error: Exception | None = protocol.lost
            except redis.exceptions.RedisError as failed:
                error = failed
            self.subscribed.clear()
            log.warning("subscription to %s lost (%s); subscribing again", self.channel, error)
            await asyncio.sleep(retry_seconds)

    def _pushed(self, reply: Any) -> None:
        if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
            self.on_message(reply[2])
