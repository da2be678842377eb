"""`make bench-api`: signed order placement and a bot's reads over HTTP against the real stack.

Redis (AOF everysec), PostgreSQL, one engine process, dbproc, and `python -m api` with
`--workers` uvicorn workers, all on this machine. The load generator is this process: raw
HTTP/1.1 keep-alive connections (one API key each), every request signed as a bot signs it.

1. throughput: `--connections` connections each sending its next native order
   (`POST /api/v1/order`) as soon as the previous one is answered, for `--seconds`; orders
   answered 200 per second.
2. latency: native orders paced at `--rate` per second (open loop: latency counts from the
   moment a request was due, so a stalled server is not hidden); p50, p90, p99, max.
3. binance: the same two for Binance's `POST /api/v3/order`, its parameters in the query
   string with their HMAC `signature` and the key in `X-MBX-APIKEY`.
4. reads: the reads a bot makes between orders (`GET /api/v1/orders/open`,
   `GET /api/v3/openOrders`, `GET /api/v1/balances`, `GET /api/v1/depth`), in turn: as many
   as the connections get answered in closed loop (`requests_per_second`), then paced at
   `--read-rate` requests per second (open loop), the latencies of all and of each.

Orders alternate buy and sell at one price, so half of them trade and the book stays small.
Before the native, Binance and reads parts the stack idles until the machine's 1-minute load
average is below 1 (at most 3 minutes): each part would otherwise start with the previous
part's load. Writes bench/results/api.json.
"""

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import os
import secrets
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis.asyncio
import uvloop
import yaml

from bench.report import RESULTS as RESULTS_DIR
from bench.report import settled, write_result
from ledger.gateway import Gateway
from runtime.heap import freeze_startup_heap
from tests.harness.api import ApiProcess, create_database, market_manifest, prepare_database
from tests.harness.dbproc import DbprocProcess
from tests.harness.engine import EngineProcess, child_pids
from tests.harness.servers import start_postgres, start_redis
from xch import keys
from xch.market import Market

RESULTS = RESULTS_DIR / "api.json"
AMPLE = 10**15


@dataclass
class Key:
    user: str
    key: str
    secret: str


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    key: Key
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    answer: bytes = b""
    """The last answer's body."""
    resting: list[str] = field(default_factory=list)
    """Ids of orders placed to be canceled."""
    stamp: int = 0
    """The last request's timestamp (ms)."""
    reads: int = 0
    """Reads sent in turn (`read_in_turn`)."""

    @classmethod
    async def open(cls, port: int, key: Key) -> "Connection":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, key)

    async def reopen(self, port: int) -> None:
        """A new TCP connection (the server closes one that idled past its keep-alive)."""
        self.writer.close()
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)

    def order(self, price: str = "100.00", alternate: bool = True) -> bytes:
        """The next signed order: alternately a buy and a sell (or a buy), the varying size
        keeps any two bodies (and so signatures) of one key apart."""
        self.sent += 1
        body = orjson.dumps(
            {
                "market": "bench-usd",
                "side": "sell" if alternate and not self.sent % 2 else "buy",
                "type": "limit",
                "price": price,
                "quantity": f"{1 + self.sent % 97}.0000",
            }
        )
        return self._signed("POST", "/api/v1/order", body)

    def resting_order(self) -> bytes:
        """A buy far below the book: it rests until canceled."""
        return self.order(price="1.00", alternate=False)

    def cancel(self) -> bytes:
        """The signed cancel of the last of `resting`."""
        return self._signed("DELETE", f"/api/v1/order/{self.resting.pop()}", b"")

    def open_orders(self) -> bytes:
        return self._signed("GET", "/api/v1/orders/open", b"")

    def balances(self) -> bytes:
        return self._signed("GET", "/api/v1/balances", b"")

    def depth(self) -> bytes:
        """Public: no key, no signature."""
        return b"GET /api/v1/depth?market=bench-usd HTTP/1.1\r\nHost: bench\r\n\r\n"

    def _timestamp(self) -> int:
        """Now in ms, and later than this connection's last request: no two requests of one
        key share a signature, which the replay guard would refuse."""
        self.stamp = max(time.time_ns() // 1_000_000, self.stamp + 1)
        return self.stamp

    def _signed(self, method: str, path: str, body: bytes) -> bytes:
        stamp = str(self._timestamp())
        signature = hmac.new(
            self.key.secret.encode(),
            stamp.encode() + method.encode() + path.encode() + body,
            hashlib.sha256,
        ).hexdigest()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-API-KEY: {self.key.key}\r\n"
            f"X-API-TIMESTAMP: {stamp}\r\nX-API-SIGNATURE: {signature}\r\n\r\n"
        )
        return head.encode() + body

    def binance_order(self) -> bytes:
        """The next Binance `POST /api/v3/order`: alternately a buy and a sell."""
        self.sent += 1
        return self._binance_signed(
            "POST",
            "/api/v3/order",
            f"symbol=BENCHUSD&side={'BUY' if self.sent % 2 else 'SELL'}&type=LIMIT"
            f"&timeInForce=GTC&price=100.00&quantity={1 + self.sent % 97}.0000"
            "&newOrderRespType=RESULT",
        )

    def binance_open_orders(self) -> bytes:
        return self._binance_signed("GET", "/api/v3/openOrders", "symbol=BENCHUSD")

    def _binance_signed(self, method: str, path: str, params: str) -> bytes:
        """A request signed as Binance's own connector signs it: the parameters and the
        timestamp in the query string, followed by the HMAC-SHA256 `signature` of it."""
        query = f"{params}&timestamp={self._timestamp()}"
        signature = hmac.new(self.key.secret.encode(), query.encode(), hashlib.sha256)
        return (
            f"{method} {path}?{query}&signature={signature.hexdigest()} HTTP/1.1\r\n"
            f"Host: bench\r\nContent-Length: 0\r\nX-MBX-APIKEY: {self.key.key}\r\n\r\n"
        ).encode()

    async def send(self, request: bytes | None = None) -> int:
        """Send `request` (the next native order by default) and read the answer."""
        self.writer.write(request or self.order())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        self.answer = await self.reader.readexactly(length)
        self.statuses[status] += 1
        return status

    def close(self) -> None:
        self.writer.close()


async def rested(connections: list[Connection], port: int) -> None:
    """Idle until the machine is quiet (`bench.report.settled`), then reconnect."""
    await settled()
    for connection in connections:
        await connection.reopen(port)


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time the processes have used so far (Linux /proc)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


Request = Callable[[Connection], bytes]
"""Makes a connection's next request."""

ORDERS: dict[str, Request] = {"native": Connection.order, "binance": Connection.binance_order}
READS: dict[str, Request] = {
    "orders_open": Connection.open_orders,
    "binance_open_orders": Connection.binance_open_orders,
    "balances": Connection.balances,
    "depth": Connection.depth,
}


def read_in_turn(connection: Connection) -> bytes:
    """The next of a bot's reads, each of READS in turn."""
    connection.reads += 1
    return _READ_CYCLE[connection.reads % len(_READ_CYCLE)](connection)


_READ_CYCLE = list(READS.values())


async def throughput(
    connections: list[Connection],
    seconds: float,
    components: dict[str, list[int]],
    request: Request = Connection.order,
) -> dict[str, Any]:
    """Orders answered 200 per second, and what each component spent on one in CPU time:
    on a machine shared with other work the CPU cost says more than the rate."""
    before = {name: cpu_seconds(pids) for name, pids in components.items()}
    load = os.getloadavg()[0]
    done = 0
    stop = time.perf_counter() + seconds

    async def loop(connection: Connection) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            if await connection.send(request(connection)) == 200:
                done += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in connections))
    elapsed = time.perf_counter() - started
    spent = {name: cpu_seconds(pids) - before[name] for name, pids in components.items()}
    return {
        "orders_per_second": round(done / elapsed),
        "seconds": round(elapsed, 2),
        "cpu_ms_per_order": {
            name: round(cpu * 1000 / max(done, 1), 3) for name, cpu in spent.items()
        },
        "load_average_at_start": round(load, 2),
    }


async def paced(
    connections: list[Connection], rate: int, seconds: float, requests: dict[str, Request]
) -> tuple[float, dict[str, list[float]], dict[str, Counter[int]]]:
    """`requests` in turn, paced at `rate` a second over the idle connections for `seconds`
    (open loop): the seconds it took, each one's latencies (counted from when it was due)
    and each one's answers' statuses."""
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for connection in connections:
        idle.put_nowait(connection)
    samples: dict[str, list[float]] = {name: [] for name in requests}
    statuses: dict[str, Counter[int]] = {name: Counter() for name in requests}
    kinds = list(requests.items())
    start = time.perf_counter()

    async def one(due: float, name: str, request: Request) -> None:
        connection = await idle.get()
        statuses[name][await connection.send(request(connection))] += 1
        samples[name].append(time.perf_counter() - due)
        idle.put_nowait(connection)

    tasks = []
    for n in range(int(rate * seconds)):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, *kinds[n % len(kinds)])))
    await asyncio.gather(*tasks)
    return time.perf_counter() - start, samples, statuses


def percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)

    def ms(q: float) -> float:
        return round(samples[min(len(samples) - 1, int(len(samples) * q))] * 1000, 3)

    return {
        "p50_ms": ms(0.5),
        "p90_ms": ms(0.9),
        "p99_ms": ms(0.99),
        "max_ms": round(samples[-1] * 1000, 3),
    }


async def latency(
    connections: list[Connection], rate: int, seconds: float, request: Request = Connection.order
) -> dict[str, Any]:
    elapsed, samples, _ = await paced(connections, rate, seconds, {"order": request})
    total = len(samples["order"])
    return {
        "rate": rate,
        "orders": total,
        "achieved_rate": round(total / elapsed),
        **percentiles(samples["order"]),
    }


async def reads(connections: list[Connection], rate: int, seconds: float) -> dict[str, Any]:
    """A bot's reads between orders, in turn, at `rate` requests a second offered."""
    elapsed, samples, statuses = await paced(connections, rate, seconds, READS)
    total = sum(len(latencies) for latencies in samples.values())
    return {
        "rate": rate,
        "requests": total,
        "requests_per_second": round(total / elapsed),
        **percentiles([latency for latencies in samples.values() for latency in latencies]),
        "endpoints": {
            name: {
                **percentiles(latencies),
                "statuses": {str(k): v for k, v in sorted(statuses[name].items())},
            }
            for name, latencies in samples.items()
        },
    }


async def make_keys(url: str, redis_url: str, count: int) -> list[Key]:
    """`count` users, each signed up, funded (straight into the ledger) and with a key to
    read and trade."""
    made: list[Key] = []
    client = redis.asyncio.Redis.from_url(redis_url)
    gateway = Gateway(client)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for _ in range(count):
            tokens = (
                await http.post(
                    "/api/v1/signup",
                    json={"email": f"{secrets.token_hex(6)}@bench", "password": "bench password"},
                )
            ).json()
            auth = {"Authorization": f"Bearer {tokens['access_token']}"}
            scopes = {"scopes": ["read", "trade"]}
            created = (await http.post("/api/v1/api-keys", json=scopes, headers=auth)).json()
            await gateway.deposit(tokens["user_id"], "USD", AMPLE)
            await gateway.deposit(tokens["user_id"], "BENCH", AMPLE)
            made.append(Key(tokens["user_id"], created["key"], created["secret"]))
    await client.aclose()
    return made


@dataclass
class Running:
    """The started stack: the api's port, each user's key, and each component's pids."""

    port: int
    keys: list[Key]
    components: dict[str, list[int]]


@contextlib.asynccontextmanager
async def running_stack(
    workdir: Path, workers: int, users: int, env: dict[str, str] | None = None
) -> AsyncIterator[Running]:
    """Redis, PostgreSQL, one engine of bench-usd, dbproc and `python -m api` with `workers`
    workers (rate limits out of the way), and `users` funded users with a key each."""
    redis_server = start_redis(workdir / "redis")
    redis_pid = redis_server.pid
    # Its own directory: as root, PostgreSQL runs as another user, who must own it.
    postgres = start_postgres(Path(tempfile.mkdtemp(prefix="xch-bench-pg-")))
    processes: list[Any] = []
    try:
        manifest = market_manifest(workdir, "bench-usd", "BENCH")
        market = Market.model_validate(yaml.safe_load(manifest.read_text()))
        client = redis.asyncio.Redis.from_url(redis_server.url)
        await client.hset(keys.MARKETS, market.name, market.registry_entry())
        await client.aclose()
        database_url = await create_database(postgres.url, "bench")
        await prepare_database(database_url, [manifest])
        engine = EngineProcess(manifest, redis_server.url, workdir / "engine.log")
        dbproc = DbprocProcess(redis_server.url, database_url, workdir / "dbproc.log")
        api = ApiProcess(
            redis_server.url,
            database_url,
            workdir / "api.log",
            env={
                "EXCHANGE_API_WORKERS": str(workers),
                "EXCHANGE_API_LOG_LEVEL": "warning",
                "EXCHANGE_API_RATE_LIMIT_USER": "1000000",
                "EXCHANGE_API_RATE_LIMIT_IP": "1000000",
                **(env or {}),
            },
        )
        processes += [engine, dbproc, api]
        engine.start()
        dbproc.start()
        api.start()
        await engine.wait_ready()
        await dbproc.wait_ready()
        await api.wait_ready()
        made = await make_keys(api.url, redis_server.url, users)
        assert api.process and engine.process and dbproc.process
        components = {
            "api": child_pids(api.process.pid) or [api.process.pid],
            "engine": [engine.process.pid],
            "dbproc": [dbproc.process.pid],
            "redis": [redis_pid],
            "load_generator": [os.getpid()],
        }
        yield Running(api.port, made, components)
    finally:
        for process in reversed(processes):
            process.terminate()
        postgres.stop()
        shutil.rmtree(postgres.base_dir, ignore_errors=True)
        redis_server.stop()


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    async with running_stack(workdir, args.workers, args.connections) as stack:
        connections = [await Connection.open(stack.port, key) for key in stack.keys]
        # A collector's full pass in the load generator would count as the server's latency.
        freeze_startup_heap()
        await rested(connections, stack.port)
        await throughput(connections, args.warm_up, stack.components)
        result: dict[str, Any] = {
            "workers": args.workers,
            "connections": args.connections,
            "throughput": await throughput(connections, args.seconds, stack.components),
            "latency": await latency(connections, args.rate, args.seconds),
        }
        binance = ORDERS["binance"]
        await rested(connections, stack.port)
        await throughput(connections, args.warm_up, stack.components, binance)
        placed = await throughput(connections, args.seconds, stack.components, binance)
        paced_binance = await latency(connections, args.rate, args.seconds, binance)
        result["binance"] = {
            "orders_per_second": placed["orders_per_second"],
            "p99_ms": paced_binance["p99_ms"],
            "throughput": placed,
            "latency": paced_binance,
        }
        await rested(connections, stack.port)
        await throughput(connections, args.warm_up, stack.components, read_in_turn)
        answered = await throughput(connections, args.seconds, stack.components, read_in_turn)
        paced_reads = await reads(connections, args.read_rate, args.seconds)
        result["reads"] = {
            "requests_per_second": answered["orders_per_second"],
            "p99_ms": paced_reads["p99_ms"],
            "throughput": answered,
            "latency": paced_reads,
        }
        statuses: Counter[int] = Counter()
        for connection in connections:
            statuses.update(connection.statuses)
            connection.close()
        result["statuses"] = {str(k): v for k, v in sorted(statuses.items())}
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=int, default=1000, help="orders a second, paced")
    parser.add_argument("--read-rate", type=int, default=3000, help="reads a second, paced")
    parser.add_argument("--warm-up", type=float, default=2, help="seconds before each part")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="xch-bench-api-"))
    try:
        result = uvloop.run(run(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write_result(result, args.output)


if __name__ == "__main__":
    main()
