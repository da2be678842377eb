"""`make bench-engine-service`: the engine service through a real Redis (AOF everysec).

1. drain: the standard workload preloaded into a market's input stream; time from the engine
   being ready until everything is committed.
2. latency: commands paced at a fixed rate (5,000/s, then 20,000/s); enqueue (lock script) to
   reply, p50/p99.
3. recovery: kill -9 of an engine with a long history; time from restart to ready.
4. fsync_always: drain, the 5,000/s latency and one in flight again with `appendfsync always`
   (Redis fsyncs its AOF before it answers: nothing acknowledged is lost when the machine
   dies), the price of that promise.

`stages` says where each run's batches spent their time: the engine's stage histograms
(`engine/stages.py`) and batch sizes, read from its /metrics as the run ends.

Writes bench/results/engine_service.json.
"""

import argparse
import asyncio
import json
import math
import multiprocessing
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
import redis.asyncio
import uvloop
from prometheus_client.parser import text_string_to_metric_families

from bench.report import RESULTS as RESULTS_DIR
from bench.report import write_result
from bench.workload import USERS, standard_workload
from engine.stages import STAGES
from ledger.gateway import Gateway
from ledger.scripts import script_source
from tests.harness.engine import EngineProcess
from tests.harness.processes import http_get
from tests.harness.servers import RedisServer, start_redis
from xch import keys
from xch.market import Market
from xch.schemas import BUY, DEFAULT_STP, GTC, LIMIT, SELL, Cancel, Place, Side
from xch.wire import as_text, decode_reply, encode_command

RESULTS = RESULTS_DIR / "engine_service.json"
MANIFEST = {
    "apiVersion": "exchange.dev/v1alpha1",
    "kind": "Market",
    "metadata": {"name": "bench"},
    "spec": {
        "base": {"asset": "BTC", "scale": 8},
        "quote": {"asset": "USD", "scale": 6},
        "tickSize": "0.01",
        "lotSize": "0.0001",
        "fees": {"makerBps": 10, "takerBps": 20},
        "engine": {"snapshotEvery": 10000},
    },
}
RULES = Market.model_validate(MANIFEST).rules()
AMPLE = 10**15
PIPELINE = 2000
FAST_BURST = 40
"""At most this many enqueue calls in one pipeline in the 20,000/s run (2 ms of orders)."""


def lock_for(command: Place | Cancel) -> tuple[str, str, int]:
    if isinstance(command, Cancel):
        return command.user, "", 0
    if command.side == BUY:
        return command.user, "USD", command.price * command.qty * RULES.quote_per_tick_lot
    return command.user, "BTC", command.qty * RULES.base_per_lot


async def fund(gateway: Gateway, users: list[str]) -> None:
    for user in users:
        await gateway.deposit(user, "USD", AMPLE)
        await gateway.deposit(user, "BTC", AMPLE)


async def preload(client: redis.asyncio.Redis, gateway: Gateway, commands: list[Any]) -> str:
    """Enqueue every command through the lock script, pipelined; the last entry id."""
    last = ""
    script = gateway.scripts.enqueue
    stream = keys.market_input("bench")
    for start in range(0, len(commands), PIPELINE):
        async with client.pipeline(transaction=False) as pipe:
            for command in commands[start : start + PIPELINE]:
                user, asset, amount = lock_for(command)
                await script(
                    keys=[keys.balances(user), stream],
                    args=[encode_command(command), user, asset, str(amount), ""],
                    client=pipe,
                )
            results = await pipe.execute()
        last = as_text(results[-1][1])
    return last


async def wait_applied(client: redis.asyncio.Redis, entry_id: str, timeout: float) -> float:
    target = tuple(int(part) for part in entry_id.split("-"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        applied = await client.get(keys.market_applied("bench"))
        if applied is not None and tuple(int(p) for p in as_text(applied).split("-")) >= target:
            return time.perf_counter()
        await asyncio.sleep(0.005)
    raise TimeoutError(f"{entry_id} not applied in {timeout} s")


async def wait_lease(client: redis.asyncio.Redis, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await client.exists(keys.market_lease("bench")):
            return time.perf_counter()
        await asyncio.sleep(0.001)
    raise TimeoutError("the engine took no lease")


def histogram(
    metrics: str, name: str, labels: dict[str, str]
) -> tuple[list[tuple[float, float]], float]:
    """The cumulative buckets (upper bound, count) and the sum of one histogram in a /metrics
    text."""
    buckets: list[tuple[float, float]] = []
    total = 0.0
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name not in (f"{name}_bucket", f"{name}_sum"):
                continue
            if any(sample.labels.get(key) != value for key, value in labels.items()):
                continue
            if sample.name.endswith("_sum"):
                total = sample.value
            else:
                buckets.append((float(sample.labels["le"]), sample.value))
    return sorted(buckets), total


def quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """`histogram_quantile`: the q-quantile by linear interpolation within its bucket (the
    highest finite bound when it falls in +Inf)."""
    count = buckets[-1][1]
    rank, lower, below = q * count, 0.0, 0.0
    for bound, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(bound):
                return lower
            inside = cumulative - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, cumulative
    return lower


def summary(buckets: list[tuple[float, float]], total: float, scale: float) -> dict[str, float]:
    """count, mean and p50/p99 (interpolated in buckets) of one histogram, times `scale`."""
    count = buckets[-1][1] if buckets else 0
    if not count:
        return {"count": 0}
    return {
        "count": int(count),
        "mean": round(total / count * scale, 1),
        "p50": round(quantile(buckets, 0.5) * scale, 1),
        "p99": round(quantile(buckets, 0.99) * scale, 1),
    }


async def stage_profile(engine: EngineProcess) -> dict[str, Any]:
    """Where the engine's batches spent their time so far: per stage the batches timed, the
    mean and p50/p99 µs per batch; the batch sizes."""
    status, body = await http_get(engine.health_port, "/metrics")
    if status != 200:
        return {"error": f"/metrics answered {status}"}
    metrics = body.decode()
    stage_us = {
        stage: summary(*histogram(metrics, "engine_stage_seconds", {"stage": stage}), 1e6)
        for stage in STAGES
    }
    sizes, total = histogram(metrics, "engine_batch_size", {})
    return {
        "us_per_batch": stage_us,
        "batch_size": {
            **summary(sizes, total, 1.0),
            "at_most": {f"{bound:g}": int(count) for bound, count in sizes},
        },
        "note": "p50/p99 interpolated within the histogram's buckets, as histogram_quantile",
    }


async def drain(server: RedisServer, workdir: Path, orders: int) -> dict[str, Any]:
    client = redis.asyncio.Redis.from_url(server.url)
    await client.flushall()
    gateway = Gateway(client)
    workload = standard_workload(orders)
    await fund(gateway, workload.users)
    last = await preload(client, gateway, workload.commands)
    engine = start_engine(workdir, server.url)
    try:
        started = await wait_lease(client)
        finished = await wait_applied(client, last, timeout=600)
        stages = await stage_profile(engine)
    finally:
        engine.kill()
    events = await client.xlen(keys.market_events("bench"))  # one entry per committed batch
    await client.aclose()
    seconds = finished - started
    return {
        "operations": len(workload.commands),
        "seconds": round(seconds, 3),
        "ops_per_sec": round(len(workload.commands) / seconds),
        "event_entries": events,
        "note": "from the engine taking its lease (recovery of an empty market included)",
        "stages": stages,
    }


async def fresh_funded_users(url: str) -> list[str]:
    """Empty Redis, then fund the workload's users amply: their names."""
    client = redis.asyncio.Redis.from_url(url)
    await client.flushall()
    users = [f"u{n}" for n in range(USERS)]
    await fund(Gateway(client), users)
    await client.aclose()
    return users


async def latency(
    server: RedisServer, workdir: Path, rate: int, seconds: float, burst: int = 1
) -> dict[str, Any]:
    """Orders paced at `rate`/s from a plain synchronous sender; the replies are received by a
    separate process, so that neither side waits for the other's turn on an event loop. Both
    stamp with CLOCK_MONOTONIC (time.perf_counter), which is one clock for the whole machine."""
    users = await fresh_funded_users(server.url)
    engine = start_engine(workdir, server.url)
    total = int(rate * seconds)
    received: multiprocessing.Queue[dict[str, float]] = multiprocessing.get_context("fork").Queue()
    listener = multiprocessing.get_context("fork").Process(
        target=listen_for_replies, args=(server.url, total, seconds + 10, received)
    )
    try:
        await engine.wait_ready()
        listener.start()
        await asyncio.sleep(0.5)  # the listener subscribes
        sending = time.perf_counter()
        sent = send_paced(server.url, users, rate, total, burst)
        sending = time.perf_counter() - sending
        arrivals = received.get(timeout=seconds + 30)
        stages = await stage_profile(engine)
    finally:
        engine.kill()
        listener.join(timeout=5)
    samples = sorted(
        arrivals[entry] - started for entry, started in sent.items() if entry in arrivals
    )
    return {
        "rate_per_sec": rate,
        "commands": total,
        "replies": len(samples),
        "p50_ms": round(samples[len(samples) // 2] * 1000, 3),
        "p99_ms": round(samples[int(len(samples) * 0.99)] * 1000, 3),
        "max_ms": round(samples[-1] * 1000, 3),
        "sent_per_sec": round(total / sending),
        "note": "from calling the lock-and-enqueue script to receiving the engine's reply",
        "stages": stages,
    }


async def one_in_flight(server: RedisServer, workdir: Path, total: int) -> dict[str, Any]:
    """The same path with one order in flight at a time: each waits for its reply."""
    users = await fresh_funded_users(server.url)
    engine = start_engine(workdir, server.url)
    try:
        await engine.wait_ready()
        samples, seconds = round_trips(server.url, users, total)
    finally:
        engine.kill()
    samples.sort()
    return {
        "orders": total,
        "orders_per_sec": round(total / seconds),
        "p50_ms": round(samples[len(samples) // 2] * 1000, 3),
        "p99_ms": round(samples[int(len(samples) * 0.99)] * 1000, 3),
        "note": "lock-and-enqueue call to reply received, the next order sent after the reply",
    }


def round_trips(url: str, users: list[str], total: int) -> tuple[list[float], float]:
    client = redis.Redis.from_url(url)
    enqueue = client.register_script(script_source("enqueue"))
    pubsub = client.pubsub()  # type: ignore[no-untyped-call]
    pubsub.subscribe(keys.reply_channel("bench-api"))
    while pubsub.get_message(timeout=1) is None:
        pass  # the subscription's confirmation
    rng = random.Random(11)
    samples = []
    begin = time.perf_counter()
    for n in range(total):
        user = users[rng.randrange(len(users))]
        side: Side = BUY if rng.random() < 0.5 else SELL
        order = Place(f"o{n}", user, side, LIMIT, 10_000 + rng.randint(-50, 50),
                      rng.randint(1, 100), 0, GTC, DEFAULT_STP, 0)  # fmt: skip
        _, asset, amount = lock_for(order)
        started = time.perf_counter()
        enqueue(
            keys=[keys.balances(user), keys.market_input("bench")],
            args=[encode_command(order), user, asset, str(amount), "bench-api"],
        )
        while pubsub.get_message(ignore_subscribe_messages=True, timeout=5) is None:
            pass
        samples.append(time.perf_counter() - started)
    seconds = time.perf_counter() - begin
    client.close()
    return samples, seconds


def paced_orders(users: list[str], total: int) -> list[tuple[str, list[str | bytes]]]:
    """`total` random limit orders as lock-and-enqueue calls: (user, the script's args)."""
    rng = random.Random(7)
    calls: list[tuple[str, list[str | bytes]]] = []
    for n in range(total):
        side: Side = BUY if rng.random() < 0.5 else SELL
        price = 10_000 + rng.randint(-50, 50)
        user = users[rng.randrange(len(users))]
        order = Place(
            f"o{n}", user, side, LIMIT, price, rng.randint(1, 100), 0, GTC, DEFAULT_STP, 0
        )
        _, asset, amount = lock_for(order)
        calls.append((user, [encode_command(order), user, asset, str(amount), "bench-api"]))
    return calls


def send_paced(
    url: str, users: list[str], rate: int, total: int, burst: int = 1
) -> dict[str, float]:
    """Lock-and-enqueue `total` random limit orders at `rate`/s; entry id -> send time. The
    orders are built beforehand; a sender behind its schedule sends what is due, up to `burst`
    calls, in one pipeline (one synchronous client alone cannot make 20,000 calls a second)."""
    client = redis.Redis.from_url(url)
    enqueue = client.register_script(script_source("enqueue"))
    stream = keys.market_input("bench")
    calls = paced_orders(users, total)
    sent: dict[str, float] = {}
    begin = time.perf_counter()
    n = 0
    while n < total:
        delay = begin + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        due = int((time.perf_counter() - begin) * rate) + 1
        group = calls[n : max(n + 1, min(due, n + burst, total))]
        started = time.perf_counter()
        if len(group) == 1:
            user, args = group[0]
            results = [enqueue(keys=[keys.balances(user), stream], args=args)]
        else:
            pipe = client.pipeline(transaction=False)
            for user, args in group:
                enqueue(keys=[keys.balances(user), stream], args=args, client=pipe)
            results = pipe.execute()
        for done, entry in results:
            if done:
                sent[as_text(entry)] = started
        n += len(group)
    client.close()
    return sent


def listen_for_replies(
    url: str, expected: int, timeout: float, out: "multiprocessing.Queue[dict[str, float]]"
) -> None:
    """In a child process: the arrival time of each reply, by input id."""
    client = redis.Redis.from_url(url)
    pubsub = client.pubsub()  # type: ignore[no-untyped-call]
    pubsub.subscribe(keys.reply_channel("bench-api"))
    arrivals: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(arrivals) < expected and time.monotonic() < deadline:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message is not None:
            arrivals[decode_reply(message["data"]).input_id] = time.perf_counter()
    out.put(arrivals)


async def recovery(server: RedisServer, workdir: Path, history: int) -> dict[str, Any]:
    client = redis.asyncio.Redis.from_url(server.url)
    await client.flushall()
    gateway = Gateway(client)
    workload = standard_workload(history * 4 // 5 + 1)
    await fund(gateway, workload.users)
    engine = start_engine(workdir, server.url)
    try:
        last = await preload(client, gateway, workload.commands[:history])
        await wait_applied(client, last, timeout=1800)
        await asyncio.sleep(0.3)
    finally:
        engine.kill()
    lease_left = await client.pttl(keys.market_lease("bench"))
    with_lease = await seconds_to_ready(workdir, server.url)
    await client.delete(keys.market_lease("bench"))  # what the killed engine would still hold
    alone = await seconds_to_ready(workdir, server.url)
    snapshot = await client.get(keys.market_snapshot("bench"))
    await client.aclose()
    return {
        "history_commands": min(history, len(workload.commands)),
        "seconds_to_ready_after_kill": round(with_lease, 3),
        "lease_ms_left_at_kill": lease_left,
        "seconds_to_ready_lease_free": round(alone, 3),
        "snapshot_bytes": len(snapshot or b""),
        "note": "process start (imports included) to /readyz 200; the first figure includes "
        "waiting out the killed engine's lease (TTL 3 s), the second does not",
    }


async def seconds_to_ready(workdir: Path, redis_url: str) -> float:
    """Start an engine, wait until it is ready, stop it: the seconds it took to be ready."""
    began = time.perf_counter()
    engine = start_engine(workdir, redis_url)
    try:
        await engine.wait_ready(timeout=120)
        return time.perf_counter() - began
    finally:
        engine.kill()


def start_engine(workdir: Path, redis_url: str) -> EngineProcess:
    manifest = workdir / "bench.yaml"
    manifest.write_text(json.dumps(MANIFEST))
    engine = EngineProcess(manifest, redis_url, workdir / f"engine-{time.monotonic_ns()}.log")
    engine.start()
    return engine


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        server = start_redis(workdir / "redis")
        try:
            return {
                "benchmark": "engine_service",
                "redis": "appendonly yes, appendfsync everysec",
                "drain": await drain(server, workdir, args.orders),
                "latency": await latency(server, workdir, args.rate, args.seconds),
                "latency_20k": await latency(
                    server, workdir, args.fast_rate, args.seconds, burst=FAST_BURST
                ),
                "latency_one_in_flight": await one_in_flight(server, workdir, args.round_trips),
                "recovery": await recovery(server, workdir, args.history),
                "fsync_always": await fsync_always(server, workdir, args),
            }
        finally:
            server.stop()


async def fsync_always(
    server: RedisServer, workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    client = redis.asyncio.Redis.from_url(server.url)
    await client.config_set("appendfsync", "always")
    try:
        return {
            "redis": "appendonly yes, appendfsync always",
            "drain": await drain(server, workdir, args.orders),
            "latency": await latency(server, workdir, args.rate, args.seconds),
            "latency_one_in_flight": await one_in_flight(server, workdir, args.round_trips),
        }
    finally:
        await client.config_set("appendfsync", "everysec")
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--fast-rate", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--round-trips", type=int, default=5000)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = uvloop.run(run(args))
    write_result(result, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
