"""Our own services (`python -m engine`, `python -m dbproc`, …) as child processes in tests:
each with its log file and health port, always reaped."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class ServiceProcess(ABC):
    """A `python -m …` child. Subclasses are dataclasses giving `log_file`, `env`,
    `health_port`, `process` and the module's `arguments()`."""

    log_file: Path
    env: dict[str, str]
    health_port: int
    process: subprocess.Popen[bytes] | None

    @abstractmethod
    def arguments(self) -> list[str]:
        """The module and its arguments: what follows `python -m`."""

    def start(self) -> None:
        environment = {**os.environ, **self.env}
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", *self.arguments()],
                cwd=ROOT,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """kill -9, and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def terminate(self, timeout: float = 10) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def ready(self) -> bool:
        return await http_status(self.health_port, "/readyz") == 200

    async def wait_ready(self, timeout: float = 20) -> None:
        name = self.arguments()[0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise AssertionError(f"{name} exited: {self.log_file.read_text()[-3000:]}")
            if await self.ready():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"{name} not ready in {timeout} s: {self.log_file.read_text()[-3000:]}"
        )


async def http_get(port: int, path: str, timeout: float = 5) -> tuple[int, bytes]:
    """(status, body) of GET `path` on 127.0.0.1:`port`; (0, b"") if nothing answers. It asks
    the server to close the connection (uvicorn keeps it open otherwise) and reads to the end."""
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


async def http_status(port: int, path: str) -> int:
    return (await http_get(port, path))[0]
