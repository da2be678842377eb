"""The api's CPU time per signed order and per read, for comparing changes on a busy machine.

The `make bench-api` stack (bench.api.running_stack) with one api worker; a fixed number of
signed orders, native `POST /api/v1/order`, Binance `POST /api/v3/order`, then cancels of
resting orders (`DELETE /api/v1/order/{id}`), then each of a bot's reads (bench.api.READS),
from a few connections in closed loop. What is reported is the api process's user plus
system CPU time (/proc) per answered request, and every other component's: unlike a rate, it
hardly moves when other work shares the cores. `--only` picks routes.
`--profile DIR` records py-spy collapsed stacks of the api for each route while it runs
(`DIR/api-{route}.txt`; flamegraph.pl or speedscope draw them).
"""

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import uvloop

from bench.api import ORDERS, READS, Connection, Request, cpu_seconds, running_stack

ROUTES: dict[str, Request] = {**ORDERS, "cancel": Connection.cancel, **READS}


def py_spy(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """py-spy recording `pid` as collapsed stacks into `output` until it is interrupted."""
    command = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid)]
    return subprocess.Popen(
        [*command, "--output", str(output), "--format", "raw", "--rate", "200", "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def measure(
    connections: list[Connection], route: str, requests: int, components: dict[str, list[int]]
) -> dict[str, Any]:
    """`requests` requests of `route` spread over the connections; each component's CPU ms
    per answered one."""
    make = ROUTES[route]
    statuses: Counter[int] = Counter()

    async def loop(connection: Connection, count: int) -> None:
        for _ in range(count):
            statuses[await connection.send(make(connection))] += 1

    before = {name: cpu_seconds(pids) for name, pids in components.items()}
    share = requests // len(connections)
    await asyncio.gather(*(loop(c, share) for c in connections))
    spent = {name: cpu_seconds(pids) - before[name] for name, pids in components.items()}
    answered = sum(statuses.values())
    return {
        "requests": answered,
        "cpu_ms_per_request": {
            name: round(cpu * 1000 / max(answered, 1), 3) for name, cpu in spent.items()
        },
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


async def place_resting(connections: list[Connection], orders: int) -> None:
    """`orders` resting orders spread over the connections, for the cancels to cancel."""

    async def loop(connection: Connection) -> None:
        for _ in range(orders // len(connections)):
            assert await connection.send(connection.resting_order()) == 200
            connection.resting.append(orjson.loads(connection.answer)["order_id"])

    await asyncio.gather(*(loop(c) for c in connections))


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    async with running_stack(workdir, 1, args.connections) as stack:
        api = stack.components["api"][0]
        connections = [await Connection.open(stack.port, key) for key in stack.keys]
        result: dict[str, Any] = {}
        for route in args.only or ROUTES:
            if route == "cancel":
                await place_resting(connections, args.requests + args.requests // 5)
            await measure(connections, route, args.requests // 5, stack.components)  # warm-up
            recorder = args.profile and py_spy(api, args.profile / f"api-{route}.txt")
            result[route] = await measure(connections, route, args.requests, stack.components)
            if recorder:
                recorder.send_signal(2)
                recorder.wait(30)
        for connection in connections:
            connection.close()
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", "--orders", type=int, default=2000, help="of each route")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--only", nargs="+", choices=list(ROUTES), default=None)
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="xch-bench-api-cpu-"))
    try:
        result = uvloop.run(run(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
