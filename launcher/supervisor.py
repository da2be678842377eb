"""`python -m launcher.supervisor`: keep the local stack's processes running.

Every half second it compares the processes that should run (the shared services, and an
engine and market maker for each market in the registry) with those that do: it starts
what is missing, stops what is no longer wanted (a market deleted), and restarts what died,
backing off when a process keeps dying. It writes what it runs to `run/supervisor.json`
for `exchange status`. SIGTERM stops every child (SIGTERM, then SIGKILL after 15 s).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from decimal import Decimal

import redis.asyncio

from launcher.config import LocalConfig
from launcher.plan import MarketInfo, Process, frontend, per_market, shared, traders
from launcher.servers import ROOT
from runtime.pause import pause
from runtime.redis_client import redis_client
from xch import keys
from xch.market import Market
from xch.money import format_decimal, parse_decimal

log = logging.getLogger("supervisor")
TICK_SECONDS = 0.5
STABLE_SECONDS = 30.0
"""A process that ran this long is healthy again: its restart delay starts over."""
MAX_DELAY_SECONDS = 10.0


@dataclass
class Running:
    process: Process
    popen: subprocess.Popen[bytes]
    started: float
    restarts: int = 0
    delay: float = 0.5
    restart_at: float | None = None
    """When a process that died may start again (None while it runs)."""


class Supervisor:
    def __init__(self, config: LocalConfig, with_traders: bool = True) -> None:
        self.config = config
        self.with_traders = with_traders
        self.running: dict[str, Running] = {}
        self.slots: dict[str, int] = {}
        """Each market keeps the slot (health ports) it got first."""

    async def wanted(self, client: redis.asyncio.Redis) -> dict[str, Process]:
        entries = await client.hgetall(keys.MARKETS)
        markets = sorted(
            (Market.from_registry_entry(entry) for entry in entries.values()),
            key=lambda m: m.name,
        )
        processes = shared(self.config)
        if (ROOT / "frontend" / "out" / "index.html").exists():
            processes.append(frontend(self.config))
        for market in markets:
            slot = self.slots.setdefault(market.name, len(self.slots))
            maker = market.spec.market_maker
            half = parse_decimal(maker.max_inventory) / 2 if maker.max_inventory else Decimal(1)
            info = MarketInfo(
                market.name,
                market.spec.base.asset,
                market.spec.quote.asset,
                maker.enabled,
                format_decimal(half),
            )
            processes += per_market(self.config, slot, info)
        if self.with_traders and markets:
            processes.append(traders(self.config))
        return {process.name: process for process in processes}

    def start(self, process: Process) -> subprocess.Popen[bytes]:
        process.log.parent.mkdir(parents=True, exist_ok=True)
        with process.log.open("ab") as out:
            return subprocess.Popen(
                process.command,
                cwd=process.cwd,
                env={**os.environ, **process.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def converge(self, wanted: dict[str, Process]) -> list[Running]:
        """Start and restart what `wanted` says; returns what must stop (a deleted market's
        processes), already taken off the books."""
        now = time.monotonic()
        unwanted = [self.running.pop(name) for name in list(self.running) if name not in wanted]
        for name, process in wanted.items():
            current = self.running.get(name)
            if current is None:
                self.running[name] = Running(process, self.start(process), now)
                log.info("started %s", name)
            elif current.popen.poll() is not None:
                self._restart(current, now)
        return unwanted

    def _restart(self, current: Running, now: float) -> None:
        if current.restart_at is None:
            if now - current.started >= STABLE_SECONDS:
                current.delay = 0.5
            current.restart_at = now + current.delay
            current.delay = min(current.delay * 2, MAX_DELAY_SECONDS)
            log.warning(
                "%s exited with %s; restarting in %.1f s",
                current.process.name,
                current.popen.returncode,
                current.restart_at - now,
            )
        elif now >= current.restart_at:
            current.popen = self.start(current.process)
            current.started, current.restart_at = now, None
            current.restarts += 1
            log.info("restarted %s", current.process.name)

    def write_state(self) -> None:
        state = {
            name: {
                "pid": r.popen.pid,
                "alive": r.popen.poll() is None,
                "restarts": r.restarts,
                "log": str(r.process.log),
                "health": r.process.health_url,
            }
            for name, r in sorted(self.running.items())
        }
        path = self.config.run_dir / "supervisor.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=2))
        temporary.replace(path)

    async def run(self, stop: asyncio.Event) -> None:
        client = redis_client(self.config.redis_url("operator"))
        try:
            while not stop.is_set():
                try:
                    unwanted = self.converge(await self.wanted(client))
                except (redis.exceptions.RedisError, OSError):
                    log.warning("cannot read the market registry", exc_info=True)
                    unwanted = []
                if unwanted:
                    await asyncio.to_thread(stop_all, unwanted)
                    log.info("stopped %s", ", ".join(r.process.name for r in unwanted))
                self.write_state()
                await pause(stop, TICK_SECONDS)
        finally:
            await asyncio.to_thread(stop_all, list(self.running.values()))
            self.running.clear()
            self.write_state()
            await client.aclose()


def stop_all(running: list[Running], timeout: float = 15.0) -> None:
    """SIGTERM every process (they cancel quotes, finish batches), SIGKILL the stragglers."""
    for r in running:
        if r.popen.poll() is None:
            r.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for r in running:
        try:
            r.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            r.popen.kill()
            r.popen.wait(timeout=10)


async def main() -> None:
    config = LocalConfig.from_env()
    supervisor = Supervisor(config, with_traders=os.environ.get("EXCHANGE_TRADERS", "1") != "0")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await supervisor.run(stop)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(main())
