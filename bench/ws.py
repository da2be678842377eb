"""`make bench-ws`: WebSocket fan-out to 5,000 clients, with a load client that is not the limit.

The clients are one Go process (bench/wsload, docs/ws.md "The benchmark") on a mix of streams
across four markets, each with its own engine: most on `depth@M@100ms` + `trade@M` +
`ticker@M`, some on the raw `depth@M`, some in Binance format, 10% with their `orders` stream,
whose users place part of the orders. This process paces the orders (a forked sender) and
tells wsload what the engines committed (each events entry's seq, trade and depth update ids
and commit time), so that wsload measures commit-to-client latency and what each client was
owed but did not get. Parts:

1. one ws replica: ws RSS per idle client; `--rate` orders/s for `--seconds` (the headline
   figures); then the rate doubled per step until p99 passes 100 ms (the ceiling).
2. two ws replicas sharing one port (SO_REUSEPORT): twice the clients at `--rate`.

Each measured step starts once the machine's 1-minute load is below 1 (`bench.report.settled`).
Writes bench/results/ws.json.
"""

import argparse
import asyncio
import copy
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import redis
import redis.asyncio

from bench.engine_service import AMPLE, MANIFEST, RULES
from bench.report import QUIET_LOAD, settled, write_result
from bench.report import RESULTS as RESULTS_DIR
from ledger.gateway import Gateway
from ledger.scripts import script_source
from tests.harness.engine import EngineProcess, wait_applied
from tests.harness.processes import free_port
from tests.harness.servers import RedisServer, start_redis
from tests.harness.ws import WsProcess
from xch import keys
from xch.market import Market
from xch.schemas import (
    BUY,
    DEFAULT_STP,
    GTC,
    LIMIT,
    SELL,
    Depth,
    Event,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderTriggered,
    Place,
    Side,
    Trade,
)
from xch.wire import FIELD_EVENT, as_text, decode_events, encode_command

RESULTS = RESULTS_DIR / "ws.json"
WSLOAD_SOURCE = Path(__file__).parent / "wsload"
BASES = ("AAA", "BBB", "CCC", "DDD")
QUOTE = "USD"
TRADERS = 1_000
"""Users without a client of their own who place the rest of the orders."""
PRIVATE_SHARE = 0.3
"""Of the orders, those placed by the users of the private clients."""
P99_LIMIT_MS = 100.0
SEED_ORDERS = 200
"""Orders per market placed before the clients connect, so that the books are not empty."""
BURST = 50
"""At most this many orders in one pipeline when the sender is behind its schedule."""


def market_name(base: str) -> str:
    return f"{base.lower()}-{QUOTE.lower()}"


def build_wsload(output: Path) -> Path:
    """`go build` the load client (standard library only: no module download)."""
    subprocess.run(
        ["go", "build", "-trimpath", "-o", str(output), "."],
        cwd=WSLOAD_SOURCE,
        check=True,
        env={**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"},
    )
    return output


@dataclass(frozen=True)
class Options:
    clients: int
    replicas: int
    rate: int
    seconds: float
    quiet_load: float | None = 1.0
    """Wait for the 1-minute load average to drop below this before each step; None: don't."""
    grace: float = 5.0
    """After the load, how long deliveries may take before what is missing is undelivered."""
    ceiling_within: tuple[int, int] | None = None
    """Search the ceiling from `rate` between these rates (`next_rate`); None: one step."""


@dataclass
class Mix:
    """The clients by kind, of `clients` in all."""

    clients: int
    private: int = field(init=False)
    binance: int = field(init=False)
    raw_depth: int = field(init=False)
    merged: int = field(init=False)

    def __post_init__(self) -> None:
        self.private = self.clients // 10
        self.binance = self.clients // 10
        self.raw_depth = self.clients // 10
        self.merged = self.clients - self.private - self.binance - self.raw_depth

    def private_users(self) -> list[str]:
        return [f"p{n}" for n in range(self.private)]

    def plan(self, urls: list[str], grace: float) -> dict[str, Any]:
        markets = [market_name(base) for base in BASES]
        symbols = [f"{base}{QUOTE}".lower() for base in BASES]
        native = ["depth@{m}@100ms", "trade@{m}", "ticker@{m}"]
        users = self.private_users()
        groups = [
            {"count": self.merged, "streams": native, "markets": markets},
            {"count": self.raw_depth, "streams": ["depth@{m}", "trade@{m}"], "markets": markets},
            {
                "count": self.binance,
                "binance": True,
                "streams": ["{s}@trade", "{s}@depth@100ms", "{s}@ticker"],
                "markets": markets,
                "symbols": symbols,
            },
            {
                "count": self.private,
                "streams": [*native, "orders"],
                "markets": markets,
                "listen_keys": [f"key-{user}" for user in users],
                "users": users,
            },
        ]
        return {"urls": urls, "groups": groups, "connect_parallel": 100, "grace_seconds": grace}

    def describe(self) -> dict[str, Any]:
        return {
            "depth@M@100ms + trade@M + ticker@M": self.merged,
            "depth@M + trade@M": self.raw_depth,
            "Binance <symbol>@trade + @depth@100ms + @ticker": self.binance,
            "depth@M@100ms + trade@M + ticker@M + orders (placing orders)": self.private,
        }


# ---- orders -------------------------------------------------------------------------------


Call = tuple[str, str, list[str | bytes]]
"""An order as a lock-and-enqueue call: market, user, the script's arguments."""


def order_calls(mix: Mix, total: int, seed: int) -> list[Call]:
    """`total` random limit orders across the markets: a share by the private clients' users,
    each in the market its client follows, the rest by other traders in any market."""
    rng = random.Random(seed)
    markets = [market_name(base) for base in BASES]
    private = mix.private_users()
    calls: list[Call] = []
    for n in range(total):
        if private and rng.random() < PRIVATE_SHARE:
            index = rng.randrange(len(private))
            user, market = private[index], markets[index % len(markets)]
        else:
            user, market = f"t{rng.randrange(TRADERS)}", rng.choice(markets)
        side: Side = BUY if rng.random() < 0.5 else SELL
        order = Place(
            f"o{seed}-{n}", user, side, LIMIT, 10_000 + rng.randint(-50, 50),
            rng.randint(1, 100), 0, GTC, DEFAULT_STP, 0,
        )  # fmt: skip
        base = market.split("-")[0].upper()
        asset, amount = (
            (QUOTE, order.price * order.qty * RULES.quote_per_tick_lot)
            if side == BUY
            else (base, order.qty * RULES.base_per_lot)
        )
        calls.append((market, user, [encode_command(order), user, asset, str(amount), "bench-ws"]))
    return calls


def send_orders(url: str, calls: list[Call], rate: float) -> tuple[float, dict[str, str]]:
    """Lock-and-enqueue `calls` at `rate`/s (what is due in one pipeline when behind); the
    rate achieved and each market's last input id."""
    client = redis.Redis.from_url(url)
    enqueue = client.register_script(script_source("enqueue"))
    last: dict[str, str] = {}
    begin, n = time.perf_counter(), 0
    while n < len(calls):
        delay = begin + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        due = int((time.perf_counter() - begin) * rate) + 1
        group = calls[n : max(n + 1, min(due, n + BURST, len(calls)))]
        pipe = client.pipeline(transaction=False)
        for market, user, args in group:
            enqueue(keys=[keys.balances(user), keys.market_input(market)], args=args, client=pipe)
        for (market, _, _), (done, entry) in zip(group, pipe.execute(), strict=True):
            if done:
                last[market] = as_text(entry)
        n += len(group)
    achieved = len(calls) / (time.perf_counter() - begin)
    client.close()
    return achieved, last


# ---- what the engines committed, for wsload -----------------------------------------------


def entry_lines(market: str, entry_id: str, events: list[Event], users: set[str]) -> list[str]:
    """An events entry as wsload's commit lines (bench/wsload/clock.go)."""
    last_seq = last_trade = last_depth = 0
    owed: dict[str, int] = {}
    for event in events:
        last_seq = max(last_seq, event.seq)
        if isinstance(event, Trade):
            last_trade = max(last_trade, event.trade_id)
            for user in (event.maker_user, event.taker_user):
                owed[user] = owed.get(user, 0) + 1
        elif isinstance(event, Depth):
            last_depth = max(last_depth, event.last_update_id)
        elif isinstance(event, OrderAccepted | OrderDone | OrderRejected | OrderTriggered):
            owed[event.user] = owed.get(event.user, 0) + 1
    commit_ms = entry_id.partition("-")[0]
    lines = [f"E {market} {last_seq} {commit_ms} {last_trade} {last_depth}"]
    lines += [f"O {user} {n}" for user, n in owed.items() if user in users]
    return lines


class Clock:
    """Reads every market's events stream from the start and writes each entry to wsload."""

    def __init__(self, client: redis.asyncio.Redis, users: set[str], load: "Wsload") -> None:
        self.client = client
        self.users = users
        self.load = load
        self.markets = {keys.market_events(market_name(base)): market_name(base) for base in BASES}
        self.read = dict.fromkeys(self.markets, "0-0")

    async def run(self) -> None:
        while True:
            streams: Any = self.read
            reply: Any = await self.client.xread(streams, count=500, block=1000)
            lines: list[str] = []
            for stream, entries in reply:
                key = as_text(stream)
                market = self.markets[key]
                for entry_id, fields in entries:
                    self.read[key] = as_text(entry_id)
                    events = decode_events(fields[FIELD_EVENT])
                    lines += entry_lines(market, self.read[key], events, self.users)
            if lines:
                await self.load.send(*lines)

    async def caught_up(self, timeout: float = 60) -> None:
        """Until every entry committed so far has been written."""
        deadline = time.monotonic() + timeout
        for key in self.read:
            newest: Any = await self.client.xrevrange(key, count=1)
            target = as_text(newest[0][0]) if newest else "0-0"
            while _id(self.read[key]) < _id(target):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{key} not read up to {target}")
                await asyncio.sleep(0.01)


def _id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


class Wsload:
    """The Go load client as a child process: commit lines in, JSON lines out."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, binary: Path, plan: Path, log: Path) -> "Wsload":
        process = await asyncio.create_subprocess_exec(
            str(binary), "-plan", str(plan),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=log.open("wb"),
        )  # fmt: skip
        return cls(process)

    async def send(self, *lines: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("".join(f"{line}\n" for line in lines).encode())
        await self.process.stdin.drain()

    async def answer(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"wsload ended (exit code {await self.process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


# ---- the stack ----------------------------------------------------------------------------


def manifest_of(base: str) -> dict[str, Any]:
    """The bench market's manifest (same scales, so the same lock amounts) for `base`."""
    manifest: dict[str, Any] = copy.deepcopy(MANIFEST)
    manifest["metadata"]["name"] = market_name(base)
    manifest["spec"]["base"]["asset"] = base
    return manifest


@dataclass
class Stack:
    workdir: Path
    server: RedisServer
    client: redis.asyncio.Redis
    engines: list[EngineProcess] = field(default_factory=list)
    replicas: list[WsProcess] = field(default_factory=list)
    shared_port: int = field(default_factory=free_port)

    @classmethod
    async def start(cls, workdir: Path, replicas: int, mix: Mix) -> "Stack":
        server = start_redis(workdir / "redis")
        stack = cls(workdir, server, redis.asyncio.Redis.from_url(server.url))
        try:
            await stack.prepare(mix)
            for base in BASES:
                path = workdir / f"{market_name(base)}.yaml"
                path.write_text(json.dumps(manifest_of(base)))
                engine = EngineProcess(path, server.url, workdir / f"engine-{base}.log")
                engine.start()
                stack.engines.append(engine)
            env = {"EXCHANGE_WS_SHARED_PORT": str(stack.shared_port)}
            for n in range(replicas):
                replica = WsProcess(server.url, workdir / f"ws-{n}.log", env=env)
                replica.start()
                stack.replicas.append(replica)
            for process in [*stack.engines, *stack.replicas]:
                await process.wait_ready(60)
        except BaseException:
            await stack.stop()
            raise
        return stack

    async def prepare(self, mix: Mix) -> None:
        """The markets registered, every user funded, the private clients' listen keys."""
        client = self.client
        for base in BASES:
            market = Market.model_validate(manifest_of(base))
            await client.hset(keys.MARKETS, market.name, market.registry_entry())
        gateway = Gateway(client)
        for user in [*mix.private_users(), *(f"t{n}" for n in range(TRADERS))]:
            for asset in (QUOTE, *BASES):
                await gateway.deposit(user, asset, AMPLE)
        for user in mix.private_users():
            await client.set(keys.listen_key(f"key-{user}"), user)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.shared_port}"

    def pids(self) -> list[int]:
        return [replica.process.pid for replica in self.replicas if replica.process is not None]

    async def messages_out(self) -> list[float]:
        """Each replica's messages sent so far."""
        return [(await r.metrics(60))["ws_messages_out_total"] for r in self.replicas]

    async def stop(self) -> None:
        await self.client.aclose()
        for process in [*self.replicas, *self.engines]:
            process.kill()
        self.server.stop()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_wait_seconds(pid: int) -> float:
    """Time the process was runnable but waiting for a CPU (/proc/PID/schedstat)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def write_syscalls(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    raise RuntimeError(f"no syscw for {pid}")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


# ---- measuring ----------------------------------------------------------------------------


async def place_orders(
    stack: Stack, sender: ProcessPoolExecutor, mix: Mix, rate: int, seconds: float, seed: int
) -> float:
    """Place `rate` * `seconds` orders at `rate`/s (in the `sender` process) and wait until
    they are committed; the rate achieved."""
    calls = order_calls(mix, max(1, int(rate * seconds)), seed)
    loop = asyncio.get_running_loop()
    url = stack.server.url
    achieved, last = await loop.run_in_executor(sender, send_orders, url, calls, rate)
    for market, entry_id in last.items():
        await wait_applied(stack.client, market, entry_id, timeout=120)
    return achieved


@dataclass
class Run:
    stack: Stack
    load: Wsload
    clock: Clock
    mix: Mix
    options: Options
    sender: ProcessPoolExecutor

    async def step(self, rate: int, seed: int) -> dict[str, Any]:
        """One measured window at `rate` orders/s."""
        quiet = self.options.quiet_load
        load_average = await settled(quiet) if quiet is not None else os.getloadavg()[0]
        stack, load = self.stack, self.load
        await self.clock.caught_up()
        await load.send("GO")
        await load.answer(60)  # the window is open: what is committed from now on is owed
        cpu_before = [cpu_seconds(pid) for pid in stack.pids()]
        wait_before = sum(cpu_wait_seconds(pid) for pid in stack.pids())
        writes_before = sum(write_syscalls(pid) for pid in stack.pids())
        out_before, began = await stack.messages_out(), time.monotonic()
        seconds = self.options.seconds
        achieved = await place_orders(stack, self.sender, self.mix, rate, seconds, seed)
        await self.clock.caught_up()
        await load.send("STOP")
        summary = await load.answer(self.options.grace + 120)
        wall = time.monotonic() - began
        cpu = sum(cpu_seconds(pid) for pid in stack.pids()) - sum(cpu_before)
        wait = sum(cpu_wait_seconds(pid) for pid in stack.pids()) - wait_before
        writes = sum(write_syscalls(pid) for pid in stack.pids()) - writes_before
        sent_by_replica = [
            after - before
            for after, before in zip(await stack.messages_out(), out_before, strict=True)
        ]
        sent = sum(sent_by_replica)
        latency = summary.pop("latency")
        return {
            "orders_per_sec": rate,
            "orders_per_sec_achieved": round(achieved),
            "load_average_at_start": round(load_average, 2),
            "latency_p50_ms": latency["p50_ms"],
            "latency_p99_ms": latency["p99_ms"],
            "latency": latency,
            **summary,
            "ws_messages_out": int(sent),
            "ws_messages_out_by_replica": [int(n) for n in sent_by_replica],
            "ws_cpu_us_per_message_out": round(cpu / max(sent, 1) * 1e6, 2),
            "ws_cpu_percent_of_one_core": round(100 * cpu / wall, 1),
            "ws_cpu_wait_percent_of_one_core": round(100 * wait / wall, 1),
            "ws_writes_per_sec": round(writes / wall),
        }


async def measure(options: Options, wsload: Path) -> dict[str, Any]:
    """Start a stack, connect `options.clients`, run a step at `options.rate` (and the ceiling
    search's steps)."""
    mix = Mix(options.clients)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        stack = await Stack.start(workdir, options.replicas, mix)
        sender = ProcessPoolExecutor(1, mp_context=get_context("fork"))
        load: Wsload | None = None
        clock_task: asyncio.Task[None] | None = None
        try:
            seeding = SEED_ORDERS * len(BASES)  # in a second: the books only
            await place_orders(stack, sender, mix, seeding, 1, seed=0)
            rss_before = sum(rss_kib(pid) for pid in stack.pids())
            plan_path = workdir / "plan.json"
            plan_path.write_text(json.dumps(mix.plan([stack.url], options.grace)))
            load = await Wsload.start(wsload, plan_path, workdir / "wsload.log")
            clock = Clock(stack.client, set(mix.private_users()), load)
            clock_task = asyncio.create_task(clock.run())
            run = Run(stack, load, clock, mix, options, sender)
            ready = await load.answer(600)
            await asyncio.sleep(3)  # the snapshots are sent and the connections idle
            rss_idle = sum(rss_kib(pid) for pid in stack.pids())
            steps: list[dict[str, Any]] = []
            rate: int | None = options.rate
            while rate is not None:
                steps.append(await run.step(rate, seed=len(steps) + 1))
                within = options.ceiling_within
                rate = next_rate(steps, within) if within is not None else None
            await load.send("QUIT")
            echo_missing(workdir / "wsload.log")
        finally:
            if clock_task is not None:
                clock_task.cancel()
            if load is not None:
                await load.stop()
            sender.shutdown(cancel_futures=True)
            await stack.stop()
    return {
        "clients": options.clients,
        "connected": ready["ready"],
        "replicas": options.replicas,
        "mix": mix.describe(),
        "markets": [market_name(base) for base in BASES],
        "rss_per_client_kib": round((rss_idle - rss_before) / max(ready["ready"], 1), 1),
        "steps": steps,
    }


def echo_missing(log: Path) -> None:
    """wsload's account of what some clients missed, if any, for the reader of the run."""
    for line in log.read_text().splitlines()[:20]:
        print(line, file=sys.stderr)


def passed(step: dict[str, Any]) -> bool:
    """p99 within the limit, and every client got everything without a resync."""
    return (
        step["latency_p99_ms"] <= P99_LIMIT_MS
        and not step["undelivered"]
        and not step["resynced_clients"]
    )


def next_rate(steps: list[dict[str, Any]], within: tuple[int, int]) -> int | None:
    """The ceiling search: the rate doubled while the steps pass, halved while they fail;
    None once a step went the other way than the first or the next rate is out of `within`."""
    first, last = steps[0], steps[-1]
    if passed(last) != passed(first):
        return None
    rate = last["orders_per_sec"] * 2 if passed(first) else last["orders_per_sec"] // 2
    return rate if within[0] <= rate <= within[1] else None


def ceiling(steps: list[dict[str, Any]]) -> int | None:
    """The highest rate that passed (None: none did, down to the search's lowest)."""
    rates = [step["orders_per_sec"] for step in steps if passed(step)]
    return max(rates) if rates else None


async def run(args: argparse.Namespace, wsload: Path) -> dict[str, Any]:
    timing = (args.seconds, args.quiet_load, args.grace)
    search = None if args.quick else (args.min_rate, args.max_rate)
    one = await measure(Options(args.clients, 1, args.rate, *timing, search), wsload)
    main_step = one["steps"][0]
    headline = {
        "benchmark": "ws",
        "clients": one["connected"],
        "orders_per_sec": args.rate,
        "seconds": args.seconds,
        "latency_p50_ms": main_step["latency_p50_ms"],
        "latency_p99_ms": main_step["latency_p99_ms"],
        "latency_merged_depth_p99_ms": main_step["latency_merged"]["p99_ms"],
        "undelivered": main_step["undelivered"],
        "resynced_clients": main_step["resynced_clients"],
        "ws_cpu_us_per_message_out": main_step["ws_cpu_us_per_message_out"],
        "rss_per_client_kib": one["rss_per_client_kib"],
    }
    if args.quick:
        return {**headline, "one_replica": one}
    two = await measure(Options(args.clients * 2, 2, args.rate, *timing), wsload)
    return {
        **headline,
        "ceiling_orders_per_sec": ceiling(one["steps"]),
        "ceiling_crossed": not all(passed(step) for step in one["steps"]),
        "load_average_at_start": main_step["load_average_at_start"],
        "client_cpu_percent_of_one_core": main_step["client_cpu_percent_of_one"],
        "one_replica": one,
        "two_replicas": two,
        "note": "latency: from the commit of the events entry that produced a message (its id, "
        "ms resolution) to its arrival, over every trade, depth diff and order update; native "
        "depth@M@100ms updates (held back up to 100 ms by design) apart, from their newest "
        "entry; undelivered: messages owed "
        "in the window (trades, depth entries not covered by the update chain, order updates) "
        f"and not received {args.grace} s after the load, by clients never resynced (those are "
        "counted apart); ceiling: the highest rate of the search (doubling from --rate while p99 "
        "stays within 100 ms with nothing undelivered and no resync, halving while not); two "
        "replicas: one shared port (SO_REUSEPORT), the kernel spreading connections",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--rate", type=int, default=300, help="orders per second")
    parser.add_argument("--min-rate", type=int, default=25, help="the ceiling search's lowest")
    parser.add_argument("--max-rate", type=int, default=9600, help="the ceiling search's highest")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--grace", type=float, default=5)
    parser.add_argument("--quiet-load", type=float, default=QUIET_LOAD)
    parser.add_argument("--wsload", type=Path, default=WSLOAD_SOURCE / "wsload")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one replica, one step at --rate (no ceiling search, no two replicas): for "
        "comparing versions back to back; give it another --output",
    )
    args = parser.parse_args(argv)
    wsload = build_wsload(args.wsload)
    result = asyncio.run(run(args, wsload))
    write_result(result, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
