"""CPU per stored trade of dbproc's writer, robust on a loaded machine.

The standard workload's engine batches (bench/dbproc.py, `--orders` small) are decoded and
stored with `store_market_batches`, `READ` entries per call as dbproc reads them, into a fresh
PostgreSQL. What is reported is CPU time, not wall time: this process's (decoding, building
rows, encoding COPY) and its PostgreSQL backend's (parsing COPY, deriving, indexing), per
trade. Prints one JSON line; `python -m bench.dbproc_cpu --orders 20000`.
"""

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path

import asyncpg

from bench.dbproc import cpu_seconds, engine_batches, prepare_database
from bench.engine import MARKET
from dbproc.rows import Units
from dbproc.writer import Batch, store_market_batches
from tests.harness.servers import start_postgres
from xch.wire import decode_events

READ = 200


async def store_all(url: str, entries: list[bytes]) -> dict[str, float]:
    await prepare_database(url)
    conn = await asyncpg.connect(url)
    try:
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
        units = Units.of(MARKET)
        client_start, server_start = time.process_time(), cpu_seconds(backend)
        wall_start = time.perf_counter()
        for start in range(0, len(entries), READ):
            batches = [Batch(decode_events(entry)) for entry in entries[start : start + READ]]
            await store_market_batches(conn, MARKET.name, units, batches)
        return {
            "client_cpu_s": time.process_time() - client_start,
            "server_cpu_s": cpu_seconds(backend) - server_start,
            "wall_s": time.perf_counter() - wall_start,
        }
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=20_000)
    args = parser.parse_args()
    entries, trades = engine_batches(args.orders)
    pg_dir = Path(tempfile.mkdtemp(prefix="xch-bench-pg-"))
    try:
        pg = start_postgres(pg_dir)
        try:
            spent = asyncio.run(store_all(pg.url, entries))
        finally:
            pg.stop()
    finally:
        shutil.rmtree(pg_dir, ignore_errors=True)
    per_trade = {
        f"{name[:-2]}_us_per_trade": round(seconds * 1e6 / trades, 1)
        for name, seconds in spent.items()
    }
    print(json.dumps({"orders": args.orders, "entries": len(entries), "trades": trades,
                      **{k: round(v, 3) for k, v in spent.items()}, **per_trade}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
