"""uvicorn's WebSocket protocol with less memory per connection.

Every connection has one protocol object for its whole life, and ws holds thousands of idle
ones, so what each keeps counts: uvicorn's receive queue is an `asyncio.Queue` (three deques
and an `Event`, about 3.8 KB, for the few requests a client sends), its flow-control flag an
`asyncio.Event` (a deque, 0.8 KB), and the handshake's request and response (their headers,
about 2 KB) stay referenced after the handshake. Here the queue and the flag are small objects
of the same behaviour that allocate a future only while someone waits, and the handshake is
let go once the connection is accepted. The protocol is otherwise uvicorn's own, so ws's
direct writes (ws/frames.py) work as before.
"""

import asyncio
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class Inbox:
    """A receive queue for one reader (the connection's receive loop), as `asyncio.Queue`
    is used by uvicorn: `put_nowait`, `get`, `empty`."""

    __slots__ = ("items", "waiter")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self.items.append(item)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self.items

    async def get(self) -> Any:
        while not self.items:
            if self.waiter is not None:
                raise RuntimeError("one reader at a time")
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return self.items.pop(0)


class Flag:
    """`asyncio.Event`'s `is_set`, `set`, `clear` and `wait`, with no deque until someone
    waits: uvicorn's "the transport takes more" flag."""

    __slots__ = ("value", "waiters")

    def __init__(self) -> None:
        self.value = True
        self.waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self.value

    def set(self) -> None:
        self.value = True
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self.value = False

    async def wait(self) -> bool:
        if self.value:
            return True
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self.waiters:
                self.waiters.remove(waiter)
        return True


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol (`uvicorn.Config(ws=...)`) with `Inbox`, `Flag`
    and the handshake dropped once accepted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue: Any = Inbox()
        self.writable: Any = Flag()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and hasattr(self, "response"):
            del self.request, self.response  # not read after the handshake
