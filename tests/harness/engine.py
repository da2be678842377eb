"""The engine as a process (`python -m engine`), its Market manifests, and what tests read
and enqueue around it: real processes, real Redis."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio
import yaml

from engine.book import BookSide
from ledger.gateway import Gateway
from ledger.locks import lock_amount
from tests.harness.processes import ROOT, ServiceProcess, free_port
from tests.harness.servers import as_user
from xch import keys
from xch.market import Market, MarketRules
from xch.schemas import BUY, Event, Place
from xch.wire import FIELD_EVENT, as_text, decode_events

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
class EngineProcess(ServiceProcess):
    """`python -m engine` as a child process, with its own health port and log file."""

    manifest: Path
    redis_url: str
    log_file: Path
    env: dict[str, str] = field(default_factory=dict)
    health_port: int = field(default_factory=free_port)

    @property
    def market(self) -> str:
        return load_rules(self.manifest).name

    def arguments(self) -> list[str]:
        return [
            "engine",
            "--market",
            self.market,
            "--manifest",
            str(self.manifest),
            "--redis-url",
            as_user(self.redis_url, "engine"),
            "--health-port",
            str(self.health_port),
        ]


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
    amount = lock_amount(rules, order, (asks or BookSide(is_bid=False)).totals())
    asset = rules.quote if order.side == BUY else rules.base
    return await gateway.submit(rules.name, order, order.user, asset, amount)


def child_pids(pid: int) -> list[int]:
    """The pids of a running process's children, e.g. an engine's snapshot writer (Linux)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]
