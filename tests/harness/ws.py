"""ws as a process (`python -m ws`) and a WebSocket client: real processes, real sockets."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

from tests.harness.processes import ServiceProcess, free_port, http_get
from tests.harness.servers import as_user


@dataclass
class WsProcess(ServiceProcess):
    """`python -m ws` as a child process on its own port (health and metrics on the same)."""

    redis_url: str
    log_file: Path
    env: dict[str, str] = field(default_factory=dict)
    health_port: int = field(default_factory=free_port)

    @property
    def port(self) -> int:
        return self.health_port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def arguments(self) -> list[str]:
        redis_url = as_user(self.redis_url, "ws")
        return ["ws", "--port", str(self.port), "--redis-url", redis_url]

    def start(self) -> None:
        self.env = {"EXCHANGE_WS_REGISTRY_SECONDS": "0.2", **self.env}
        super().start()

    async def metrics(self, timeout: float = 5) -> dict[str, float]:
        """The replica's metrics as {name{labels}: value}."""
        _, body = await http_get(self.port, "/metrics", timeout)
        values: dict[str, float] = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values


class WsClient:
    """A WebSocket client that keeps stream data and answers apart."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.data: list[dict[str, Any]] = []
        self.other: list[dict[str, Any]] = []
        self.next_id = 0

    @classmethod
    async def open(cls, url: str, **kwargs: Any) -> WsClient:
        return cls(await connect(url, open_timeout=10, **kwargs))

    async def close(self) -> None:
        await self.connection.close()

    async def send(self, message: Any) -> None:
        await self.connection.send(
            message if isinstance(message, str | bytes) else orjson.dumps(message).decode()
        )

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.connection.recv(), timeout)
        message: dict[str, Any] = orjson.loads(raw)
        if "stream" in message:
            message["_at"] = time.time()  # when it arrived, for latency checks
        return message

    async def request(self, method: str, params: Any = None, timeout: float = 10) -> dict[str, Any]:
        """Send a request and return its answer; stream data received meanwhile is kept."""
        self.next_id += 1
        request_id = self.next_id
        await self.send({"method": method, "params": params, "id": request_id})
        return await self.answer(request_id, timeout)

    async def answer(self, request_id: Any, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            message = await self.recv(max(0.01, deadline - time.monotonic()))
            if "stream" in message:
                self.data.append(message)
            elif message.get("id") == request_id:
                return message
            else:
                self.other.append(message)

    async def subscribe(self, *streams: str) -> None:
        reply = await self.request("SUBSCRIBE", list(streams))
        assert reply == {"result": None, "id": self.next_id}, reply

    async def collect(self, until: Any, timeout: float = 20) -> None:
        """Receive stream data until `until(self)` holds."""
        deadline = time.monotonic() + timeout
        while not until(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"condition not met in {timeout} s; last: {self.data[-3:]}")
            message = await self.recv(remaining)
            (self.data if "stream" in message else self.other).append(message)

    def stream(self, name: str) -> list[dict[str, Any]]:
        return [message["data"] for message in self.data if message["stream"] == name]
