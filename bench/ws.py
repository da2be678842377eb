"""`make bench-ws`: WebSocket fan-out under load.

1,000 clients (in a few client processes) subscribe to `trade@bench` and `depth@bench` on one
ws process while paced orders make the engine produce about 1,000 events/s. Measured: the
delay from the engine's commit (the events entry's id, a millisecond clock of the same
machine) to a client receiving the message, p50/p99; messages lost by clients that kept up
(no resync notice); the ws process's CPU. Writes bench/results/ws.json.
"""

import argparse
import asyncio
import base64
import multiprocessing
import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson
import redis.asyncio
import uvloop

from bench.engine_service import MANIFEST, fresh_funded_users, send_paced, start_engine
from bench.report import RESULTS as RESULTS_DIR
from bench.report import write_result
from tests.harness.servers import start_redis
from tests.harness.ws import WsProcess
from xch import keys
from xch.market import Market
from xch.schemas import Depth, Trade
from xch.wire import FIELD_EVENT, decode_events

RESULTS = RESULTS_DIR / "ws.json"
SAMPLE_PER_PROCESS = 200_000


@dataclass
class Received:
    """What one client got: arrival times by trade id and by depth update id."""

    snapshot_id: int = -1
    trades: dict[int, float] = field(default_factory=dict)
    depth: dict[int, tuple[int, float]] = field(default_factory=dict)
    """last update id -> (first update id, arrival)"""
    resynced: bool = False
    closed: bool = False


class LightClient(asyncio.Protocol):
    """A minimal WebSocket client (RFC 6455 handshake and unmasked server frames), so that the
    1,000 clients cost the machine little next to the server they measure."""

    def __init__(self, got: Received) -> None:
        self.got = got
        self.buffer = bytearray()
        self.handshaken = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.got.closed = True

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.handshaken.done():
            head, sep, rest = bytes(self.buffer).partition(b"\r\n\r\n")
            if not sep:
                return
            self.handshaken.set_result(head.startswith(b"HTTP/1.1 101"))
            self.buffer = bytearray(rest)
        self.frames()

    def frames(self) -> None:
        buffer, now, offset = self.buffer, time.time(), 0
        while len(buffer) - offset >= 2:
            opcode, length = buffer[offset] & 0x0F, buffer[offset + 1] & 0x7F
            start = offset + 2
            if length == 126:
                length, start = int.from_bytes(buffer[start : start + 2]), start + 2
            elif length == 127:
                length, start = int.from_bytes(buffer[start : start + 8]), start + 8
            if len(buffer) < start + length:
                break
            if opcode == 1:
                self.message(orjson.loads(buffer[start : start + length]), now)
            offset = start + length
        del buffer[:offset]

    def message(self, message: dict[str, Any], now: float) -> None:
        got, data = self.got, message.get("data")
        if data is None:
            got.resynced |= message.get("event") in ("resync", "disconnect")
        elif data["type"] == "trade":
            got.trades[data["trade_id"]] = now
        elif data["type"] == "update":
            got.depth[data["last_update_id"]] = (data["first_update_id"], now)
        elif data["type"] == "snapshot" and got.snapshot_id < 0:
            got.snapshot_id = data["last_update_id"]

    def send_text(self, text: str) -> None:
        """One masked text frame (clients must mask), of fewer than 126 bytes."""
        payload, mask = text.encode(), os.urandom(4)
        assert len(payload) < 126 and self.transport is not None
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)


async def open_client(port: int, streams: list[str]) -> LightClient:
    loop = asyncio.get_running_loop()
    got = Received()
    _, client = await loop.create_connection(lambda: LightClient(got), "127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    assert client.transport is not None
    client.transport.write(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    if not await asyncio.wait_for(client.handshaken, 60):
        raise RuntimeError("handshake refused")
    client.send_text(orjson.dumps({"method": "SUBSCRIBE", "params": streams, "id": 1}).decode())
    return client


async def commit_times(redis_url: str, after: str) -> tuple[dict[int, float], dict[int, float]]:
    """Commit time (s) of every trade id and depth update id after stream id `after`."""
    client = redis.asyncio.Redis.from_url(redis_url)
    entries: Any = await client.xrange(keys.market_events("bench"), f"({after}", "+")
    await client.aclose()
    trades: dict[int, float] = {}
    depth: dict[int, float] = {}
    for entry_id, fields in entries:
        committed = int(entry_id.split(b"-")[0]) / 1000
        for event in decode_events(fields[FIELD_EVENT]):
            if isinstance(event, Trade):
                trades[event.trade_id] = committed
            elif isinstance(event, Depth):
                depth[event.last_update_id] = committed
    return trades, depth


async def run_clients(
    port: int, streams: list[str], redis_url: str, count: int, ready: Any, go: Any, results: Any
) -> None:
    clients: list[LightClient] = []
    for start in range(0, count, 50):
        clients += await asyncio.gather(
            *(open_client(port, streams) for _ in range(start, min(count, start + 50)))
        )
    ready.put(count)
    after = await asyncio.to_thread(go.get)  # the events stream id the load starts after
    await asyncio.to_thread(go.get)
    for client in clients:
        assert client.transport is not None
        client.transport.close()
    trades, depth = await commit_times(redis_url, after)
    results.put(summarize([client.got for client in clients], trades, depth))


def depth_lost(got: Received, depth: dict[int, float]) -> int:
    """Depth events not covered by the diffs received: gaps in the chain, and the tail."""
    lost, previous = 0, got.snapshot_id
    for last in sorted(got.depth):
        first = got.depth[last][0]
        if first > previous + 1:
            lost += sum(1 for i in depth if previous < i < first)
        previous = max(previous, last)
    return lost + sum(1 for i in depth if i > previous)


def summarize(
    clients: list[Received], trades: dict[int, float], depth: dict[int, float]
) -> dict[str, Any]:
    latencies: list[float] = []
    lost = messages = kept_up = 0
    for got in clients:
        messages += len(got.trades) + len(got.depth)
        latencies += [at - trades[i] for i, at in got.trades.items() if i in trades]
        latencies += [at - depth[i] for i, (_, at) in got.depth.items() if i in depth]
        if got.resynced:
            continue
        kept_up += 1
        lost += sum(1 for i in trades if i not in got.trades)
        lost += depth_lost(got, depth)
    rng = random.Random(1)
    sample = (
        latencies
        if len(latencies) <= SAMPLE_PER_PROCESS
        else rng.sample(latencies, SAMPLE_PER_PROCESS)
    )
    return {
        "latencies": sample,
        "undelivered": lost,
        "messages": messages,
        "kept_up": kept_up,
        "expected": len(trades) + len(depth),
    }


def client_process(
    port: int, streams: list[str], redis_url: str, count: int, ready: Any, go: Any, results: Any
) -> None:
    uvloop.run(run_clients(port, streams, redis_url, count, ready, go, results))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        server = start_redis(workdir / "redis")
        context = multiprocessing.get_context("fork")
        processes: list[Any] = []
        ws = WsProcess(server.url, workdir / "ws.log")
        engine = None
        try:
            users = await fresh_funded_users(server.url)
            client = redis.asyncio.Redis.from_url(server.url)
            market = Market.model_validate(MANIFEST)
            await client.hset(keys.MARKETS, market.name, market.registry_entry())
            engine = start_engine(workdir, server.url)
            ws.start()
            await engine.wait_ready()
            await ws.wait_ready()
            streams = ["trade@bench", args.depth_stream]
            ready, results = context.Queue(), context.Queue()
            gos = []
            share = args.clients // args.processes
            for n in range(args.processes):
                count = share if n < args.processes - 1 else args.clients - share * n
                go = context.Queue()
                gos.append(go)
                process = context.Process(
                    target=client_process,
                    args=(ws.port, streams, server.url, count, ready, go, results),
                )
                process.start()
                processes.append(process)
            connected = sum(ready.get(timeout=300) for _ in processes)
            await asyncio.sleep(2)  # snapshots delivered
            newest: Any = await client.xrevrange(keys.market_events("bench"), count=1)
            after = newest[0][0].decode() if newest else "0-0"
            for go in gos:
                go.put(after)
            assert ws.process is not None
            sent_before = (await ws.metrics(60))["ws_messages_out_total"]
            cpu_before, began = cpu_seconds(ws.process.pid), time.time()
            total = int(args.rate * args.seconds)
            await asyncio.to_thread(send_paced, server.url, users, args.rate, total)
            await asyncio.sleep(2)  # the tail of the deliveries
            cpu = cpu_seconds(ws.process.pid) - cpu_before
            wall = time.time() - began
            sent = (await ws.metrics(60))["ws_messages_out_total"] - sent_before
            load = os.getloadavg()[0]
            for go in gos:
                go.put(time.time())
            parts = [results.get(timeout=600) for _ in processes]
            entries: Any = await client.xrange(keys.market_events("bench"), f"({after}", "+")
            events = sum(len(decode_events(fields[FIELD_EVENT])) for _, fields in entries)
            metrics = await ws.metrics(60)
            await client.aclose()
        finally:
            for process in processes:
                process.join(timeout=60)
                if process.is_alive():
                    process.kill()
            ws.kill()
            if engine is not None:
                engine.kill()
            server.stop()
    latencies = sorted(x for part in parts for x in part["latencies"])
    return {
        "benchmark": "ws",
        "clients": connected,
        "client_processes": args.processes,
        "streams_per_client": ["trade@bench", args.depth_stream],
        "orders_per_sec": args.rate,
        "seconds": args.seconds,
        "engine_events_per_sec": round(events / args.seconds),
        "events_entries": len(entries),
        "messages_received": sum(part["messages"] for part in parts),
        "latency_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "latency_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "latency_max_ms": round(latencies[-1] * 1000, 1),
        "messages_per_client_expected": parts[0]["expected"],
        "clients_never_resynced": sum(part["kept_up"] for part in parts),
        "undelivered_at_end_to_those_clients": sum(part["undelivered"] for part in parts),
        "slow_client_resyncs": metrics.get('ws_slow_clients_total{action="resync"}', 0),
        "slow_client_disconnects": metrics.get('ws_slow_clients_total{action="disconnect"}', 0),
        "ws_cpu_percent_of_one_core": round(100 * cpu / wall, 1),
        "ws_messages_out": int(sent),
        "ws_cpu_us_per_message_out": round(cpu / max(sent, 1) * 1e6, 1),
        "machine_load_average_1m": round(load, 1),
        "note": "latency from the events entry id (commit, ms resolution) to arrival at the "
        "client; undelivered: committed during the run and neither received 2 s after the load "
        "stopped nor announced by a resync notice (still queued, in flight, or lost); the "
        "client processes share the machine's cores with ws, engine and Redis",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--rate", type=int, default=300, help="orders per second")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--depth-stream", default="depth@bench", help="or depth@bench@100ms (merged diffs)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = uvloop.run(run(args))
    write_result(result, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
