"""ws processes and WebSocket clients for the ws tests: real processes, real sockets."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


async def http_get(port: int, path: str, timeout: float = 5) -> tuple[int, bytes]:
    """(status, body) of GET `path` on 127.0.0.1:`port`; (0, b"") if nothing answers."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1)
    except (OSError, TimeoutError):
        return 0, b""
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        writer.write(request.encode())
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), timeout)
    except (OSError, TimeoutError):
        return 0, b""
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    return (int(status_line[1]) if len(status_line) > 1 else 0), body


@dataclass
class WsProcess:
    """`python -m ws` as a child process on its own port."""

    redis_url: str
    log_file: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> None:
        environment = {**os.environ, "EXCHANGE_WS_REGISTRY_SECONDS": "0.2", **self.env}
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ws",
                    "--port",
                    str(self.port),
                    "--redis-url",
                    self.redis_url,
                ],
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    async def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise AssertionError(f"ws exited: {self.log_file.read_text()[-3000:]}")
            if (await http_get(self.port, "/readyz"))[0] == 200:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"ws not ready in {timeout} s: {self.log_file.read_text()[-3000:]}")

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
