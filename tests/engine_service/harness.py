"""Engine processes and clients for the engine service tests: real processes, real Redis."""

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

import redis.asyncio
import yaml

from engine.book import BookSide
from engine.gateway import Gateway
from engine.risk import lock_amount
from engine.scripts import as_text
from tests.servers import free_port
from xch import keys
from xch.market import Market, MarketRules
from xch.schemas import BUY, Event, Place
from xch.wire import FIELD_EVENT, decode_events

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "markets" / "btc-usd.yaml"


def write_manifest(directory: Path, name: str = "btc-usd", **engine: object) -> Path:
    """A Market manifest based on the btc-usd example, renamed, with engine spec overrides."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["metadata"]["name"] = name
    data["spec"]["engine"].update(engine)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def load_rules(manifest: Path) -> MarketRules:
    return Market.model_validate(yaml.safe_load(manifest.read_text())).rules()


@dataclass
class EngineProcess:
    """`python -m engine` as a child process, with its own health port and log file."""

    manifest: Path
    redis_url: str
    log_file: Path
    env: dict[str, str] = field(default_factory=dict)
    health_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def market(self) -> str:
        return load_rules(self.manifest).name

    def start(self) -> None:
        environment = {**os.environ, **self.env}
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "engine",
                    "--market",
                    self.market,
                    "--manifest",
                    str(self.manifest),
                    "--redis-url",
                    self.redis_url,
                    "--health-port",
                    str(self.health_port),
                ],
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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise AssertionError(f"engine exited: {self.log_file.read_text()[-3000:]}")
            if await self.ready():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"engine not ready in {timeout} s: {self.log_file.read_text()[-3000:]}"
        )


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    """(status, body) of GET `path` on 127.0.0.1:`port`; (0, b"") if nothing answers."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1)
    except (OSError, TimeoutError):
        return 0, b""
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 2)
    except (OSError, TimeoutError):
        return 0, b""
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    return (int(status_line[1]) if len(status_line) > 1 else 0), body


async def http_status(port: int, path: str) -> int:
    return (await http_get(port, path))[0]


async def read_events(client: redis.asyncio.Redis, market: str) -> list[Event]:
    """Every event in the market's events stream, in order."""
    entries: Any = await client.xrange(keys.market_events(market))
    return [event for _, fields in entries for event in decode_events(fields[FIELD_EVENT])]


async def wait_applied(
    client: redis.asyncio.Redis, market: str, entry_id: str, timeout: float = 30
) -> None:
    """Wait until the engine committed input up to `entry_id`."""
    target = tuple(int(part) for part in entry_id.split("-"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        applied = await client.get(keys.market_applied(market))
        if applied is not None and tuple(int(p) for p in as_text(applied).split("-")) >= target:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"input {entry_id} of {market} not committed within {timeout} s")


async def place(
    gateway: Gateway, rules: MarketRules, order: Place, asks: BookSide | None = None
) -> str | None:
    """Lock what `order` needs (as the api will) and enqueue it; the entry id or None."""
    amount = lock_amount(rules, order, asks or BookSide(is_bid=False))
    asset = rules.quote if order.side == BUY else rules.base
    return await gateway.submit(rules.name, order, order.user, asset, amount)


def child_pids(pid: int) -> list[int]:
    """The pids of a running process's children, e.g. an engine's snapshot writer (Linux)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]
