"""A TCP proxy in front of Redis that loses one reply: the command ran, its caller never hears.

Armed with a marker (say, a Lua script's SHA1), the proxy forwards the next request that
contains it to Redis, then cuts that connection instead of passing Redis's answer back, as a
network failure or a server restart at the wrong instant does. What a client does next (its
retry policy, what it concludes) decides whether the command takes effect once or twice.
Requests with a `slow` marker are held back a while first, as on a slow network.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ledger.scripts import script_source


def script_sha(name: str) -> bytes:
    """The SHA1 under which redis-py runs the project's Lua script `name` (EVALSHA)."""
    return hashlib.sha1(script_source(name).encode()).hexdigest().encode()


@dataclass
class _Link:
    doomed: bool = False


@dataclass
class ReplyLosingProxy:
    upstream: str
    """The Redis URL the proxy forwards to; its clients connect with the same credentials."""
    marker: bytes | None = None
    slow: dict[bytes, float] = field(default_factory=dict)
    """Requests containing a key are forwarded that many seconds late."""
    cut: asyncio.Event = field(default_factory=asyncio.Event)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return (
            urlsplit(self.upstream)._replace(netloc=f"{self._credentials}127.0.0.1:{port}").geturl()
        )

    @property
    def _credentials(self) -> str:
        netloc = urlsplit(self.upstream).netloc
        return netloc[: netloc.rindex("@") + 1] if "@" in netloc else ""

    def arm(self, marker: bytes) -> None:
        """Lose the reply to the next request that contains `marker` (once)."""
        self.cut.clear()
        self.marker = marker

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = urlsplit(self.upstream)
        try:
            up_reader, up_writer = await asyncio.open_connection(upstream.hostname, upstream.port)
        except OSError:
            writer.close()
            return
        link = _Link()
        self._writers |= {writer, up_writer}
        to_server = asyncio.create_task(self._requests(reader, up_writer, link))
        to_client = asyncio.create_task(self._replies(up_reader, writer, link))
        self._tasks |= {to_server, to_client}
        try:
            await asyncio.wait({to_server, to_client}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (to_server, to_client):
                task.cancel()
            for end in (writer, up_writer):
                end.close()
                self._writers.discard(end)
            self._tasks -= {to_server, to_client}

    async def _requests(
        self, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter, link: _Link
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(1 << 16):
                for marker, delay in self.slow.items():
                    if marker in data:
                        await asyncio.sleep(delay)
                if self.marker is not None and self.marker in data:
                    self.marker = None
                    link.doomed = True
                upstream.write(data)
                await upstream.drain()

    async def _replies(
        self, upstream: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await upstream.read(1 << 16):
                if link.doomed:
                    self.cut.set()
                    return  # the reply is dropped and the connection cut
                writer.write(data)
                await writer.drain()
