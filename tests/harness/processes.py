"""The life of every process the tests start, written once: spawn with its output in a log
file, wait until it is ready (or report its log when it exits or times out), end it with
signals in turn and then SIGKILL, always reaped. Servers, the control plane and our own
services (`python -m engine`, `python -m api`, …) are all `Child`ren; `ServiceProcess` adds
what our services share: `python -m`, the environment, a health port polled over HTTP."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]
LOG_TAIL_CHARS = 3000


class ProcessError(RuntimeError):
    """A process could not be started, did not get ready, or exited."""


# Below the kernel's ephemeral range (32768-60999 on Linux): a port the kernel hands out for
# port 0 is also what every outgoing connection draws from, so a client socket could take it
# between our pick and the server's bind.
TEST_PORTS = range(20000, 32768)
_handed_out: set[int] = set()
_port_picker = random.Random(os.getpid())


def free_port(host: str = HOST) -> int:
    """Return a TCP port below the ephemeral range that was free on `host` a moment ago and
    that this process has not handed out before."""
    while True:
        port = _port_picker.choice(TEST_PORTS)
        if port not in _handed_out and port_is_free(port, host):
            _handed_out.add(port)
            return port


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def log_tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


@dataclass(frozen=True)
class Identity:
    """Whom a child runs as (all None: as ourselves), in subprocess's terms."""

    user: int | None = None
    group: int | None = None
    extra_groups: tuple[int, ...] | None = None


def end_process(
    process: subprocess.Popen[bytes], signals: Sequence[signal.Signals], timeout: float
) -> None:
    """Send each signal in turn, waiting up to `timeout` seconds after each, until it exits;
    then SIGKILL. The process is reaped either way."""
    for sig in signals:
        if process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            continue
        return
    process.kill()
    process.wait()


@dataclass
class Child:
    """One child process. Its output goes to `log_file` (with `capture`; a server that writes
    its own log there is started with `capture=False`), or, with `pipes`, stdin and stdout are
    pipes to the test and only stderr goes to the log.

    `new_session` puts servers in their own session so that a Ctrl-C in the terminal reaches
    pytest, whose fixtures then stop them in order; our services stay in pytest's group."""

    command: list[str]
    log_file: Path
    cwd: Path | None = None
    env: dict[str, str] | None = None
    new_session: bool = True
    capture: bool = True
    pipes: bool = False
    identity: Identity = field(default_factory=Identity)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        log = self.log_file.open("ab") if self.capture or self.pipes else None
        stdin: int = subprocess.DEVNULL
        stdout: int | IO[bytes] = subprocess.DEVNULL
        stderr: int | IO[bytes] = subprocess.DEVNULL
        if self.pipes:
            stdin, stdout, stderr = subprocess.PIPE, subprocess.PIPE, log or stderr
        elif log is not None:
            stdout, stderr = log, subprocess.STDOUT
        try:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                start_new_session=self.new_session,
                user=self.identity.user,
                group=self.identity.group,
                extra_groups=self.identity.extra_groups,
            )
        finally:
            if log is not None:
                log.close()
        return self.process

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        return log_tail(self.log_file, chars)

    def _check(self, what: str, deadline: float, timeout: float) -> None:
        """Raise if the process ended or the deadline passed, with the log's end."""
        if self.process is None:
            raise ProcessError(f"{what} was not started")
        code = self.process.poll()
        if code is not None:
            raise ProcessError(f"{what} exited with code {code}:\n{self.log_tail()}")
        if time.monotonic() > deadline:
            raise ProcessError(f"{what} not ready after {timeout} s:\n{self.log_tail()}")

    def wait_until(
        self, ready: Callable[[], bool], what: str, timeout: float, interval: float = 0.05
    ) -> None:
        """Poll `ready` (blocking) until it holds, the process exits or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while not ready():
            self._check(what, deadline, timeout)
            time.sleep(interval)

    async def wait_until_async(
        self, ready: Callable[[], Awaitable[bool]], what: str, timeout: float
    ) -> None:
        """`wait_until` for a coroutine probe, sleeping without blocking the loop."""
        deadline = time.monotonic() + timeout
        while not await ready():
            self._check(what, deadline, timeout)
            await asyncio.sleep(0.05)

    def stop(
        self, signals: Sequence[signal.Signals] = (signal.SIGTERM,), timeout: float = 10
    ) -> int | None:
        """End it (see `end_process`); its exit code, None if it was never started."""
        if self.process is None:
            return None
        end_process(self.process, signals, timeout)
        return self.process.returncode

    def kill(self) -> None:
        """kill -9, and reap it."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


class ServiceProcess(ABC):
    """One of our services, `python -m …`, run from the repository root with the tests'
    environment plus `env`. Subclasses are dataclasses giving `log_file`, `env`,
    `health_port` and the module's `arguments()`; `ready_path` is its readiness probe."""

    log_file: Path
    env: dict[str, str]
    health_port: int
    ready_path = "/readyz"
    ready_timeout: float = 20
    stop_timeout: float = 10
    _child: Child | None = None

    @abstractmethod
    def arguments(self) -> list[str]:
        """The module and its arguments: what follows `python -m`."""

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    @property
    def name(self) -> str:
        return self.arguments()[0]

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._child.process if self._child is not None else None

    def start(self) -> None:
        self._child = Child(
            [sys.executable, "-m", *self.arguments()],
            self.log_file,
            cwd=ROOT,
            env=self.environment(),
            new_session=False,
        )
        self._child.start()

    def running(self) -> bool:
        return self._child is not None and self._child.running

    def kill(self) -> None:
        """kill -9, and reap it."""
        if self._child is not None:
            self._child.kill()

    def terminate(self, timeout: float | None = None) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` seconds (`stop_timeout`); its exit code."""
        if self._child is None:
            return None
        return self._child.stop((signal.SIGTERM,), timeout or self.stop_timeout)

    async def ready(self) -> bool:
        return await http_status(self.health_port, self.ready_path) == 200

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Until its readiness probe answers 200 (`ready_timeout` seconds at most)."""
        try:
            await self._started().wait_until_async(
                self.ready, self.name, timeout or self.ready_timeout
            )
        except ProcessError as exc:
            raise AssertionError(str(exc)) from None

    def wait_ready_blocking(self, timeout: float | None = None) -> None:
        """`wait_ready` for callers that cannot await (or run inside a running loop)."""

        def ready() -> bool:
            return http_status_blocking(self.health_port, self.ready_path) == 200

        try:
            self._started().wait_until(ready, self.name, timeout or self.ready_timeout, 0.1)
        except ProcessError as exc:
            raise AssertionError(str(exc)) from None

    def log_tail(self, chars: int = 4000) -> str:
        return log_tail(self.log_file, chars)

    def _started(self) -> Child:
        if self._child is None:
            raise AssertionError(f"{self.name} was not started")
        return self._child


async def http_get(port: int, path: str, timeout: float = 5) -> tuple[int, bytes]:
    """(status, body) of GET `path` on 127.0.0.1:`port`; (0, b"") if nothing answers. It asks
    the server to close the connection (uvicorn keeps it open otherwise) and reads to the end."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 1)
    except (OSError, TimeoutError):
        return 0, b""
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
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


def http_status_blocking(port: int, path: str, timeout: float = 1) -> int:
    """The status of GET `path` on 127.0.0.1:`port`, blocking; 0 if nothing answers."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0
