"""`make bench-dbproc`: trades stored per second by `python -m dbproc`, and klines read latency.

1. Store rate. The standard workload (bench/workload.py) runs through one market's engine in
   process, BATCH commands per engine batch as the service does, with funded users; each
   batch's events (orders accepted, refused and done, trades, depth) become one entry of
   `xch:{M}:events`. A fresh Redis gets that stream and the market registry entry, a fresh
   PostgreSQL the schema and the market's klines views (dbproc's ticker refresh reads them);
   then `python -m dbproc` is started and timed until its consumer group has acknowledged
   every entry (it acknowledges only after COMMIT). The rate counts from the first
   acknowledged entry, so the process start is not in it (it is reported).
2. Replicas. Two markets, each with half the orders of (1), stored by one dbproc, then
   (a fresh database and Redis) by two replicas sharing the consumer group: trades/s of
   each and their ratio (`two_over_one`).
3. Klines latency. KLINES_TRADES trades of one market spread evenly over 100 days are loaded
   with one INSERT … SELECT over generate_series and their one-minute candles computed (what
   dbproc keeps as it stores trades), the market is provisioned (plain PostgreSQL: views over
   the stored candles), the tables vacuumed and
   analysed (autovacuum does both in production), and `fetch_klines` reads 1m candles for
   random whole 1-day ranges (1440 candles each).

Writes bench/results/dbproc.json. `--profile` runs dbproc under py-spy and adds where its time
goes (functions by share of samples, on CPU or waiting).
"""

import argparse
import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import redis

from bench.engine import MARKET, funded_session
from bench.report import RESULTS as RESULTS_DIR
from bench.report import write_result
from bench.workload import standard_workload
from storage import candles
from storage.klines import fetch_klines, provision_on, relation_name
from storage.migrate import upgrade
from tests.harness.servers import PostgresServer, start_postgres, start_redis
from xch import keys
from xch.market import Market
from xch.schemas import Trade
from xch.wire import FIELD_EVENT, encode_events

RESULTS = RESULTS_DIR / "dbproc.json"
BATCH = 100
T0_MS = 1_763_000_000_000
KLINES_DAYS = 100
KLINES_START = datetime(2026, 1, 1, tzinfo=UTC)
KLINES_TRADES = 10_000_000


# ---- 1. store rate ----------------------------------------------------------------------


def engine_batches(orders: int, market: Market = MARKET) -> tuple[list[bytes], int]:
    """The workload's engine batches as events-stream entries, and how many trades they hold.
    Timestamps advance a millisecond per command."""
    rules = market.rules()
    workload = standard_workload(orders)
    session = funded_session(rules, workload.users)
    entries: list[bytes] = []
    trades = 0
    for n, command in enumerate(workload.commands):
        session.submit_parsed(command, str(n), T0_MS + n)
        if n % BATCH == BATCH - 1 or n == len(workload.commands) - 1:
            session.end_batch(str(n), T0_MS + n)
            events = session.engine.take_events()
            trades += sum(1 for e in events if isinstance(e, Trade))
            entries.append(encode_events(events))
    return entries, trades


def preload(client: redis.Redis, entries: list[bytes], market: Market = MARKET) -> None:
    client.hset(keys.MARKETS, market.name, market.registry_entry())
    stream = keys.market_events(market.name)
    for start in range(0, len(entries), 1000):
        pipe = client.pipeline(transaction=False)
        for entry in entries[start : start + 1000]:
            pipe.xadd(stream, {FIELD_EVENT: entry})
        pipe.execute()


def group_progress(client: redis.Redis, market: str = MARKET.name) -> tuple[int, int]:
    """Entries the dbproc group has read, and how many of those are not acknowledged yet."""
    for group in client.xinfo_groups(keys.market_events(market)):
        if group["name"] == keys.DBPROC_GROUP.encode():
            return int(group["entries-read"] or 0), int(group["pending"])
    return 0, 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_profiler(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """py-spy attached to `pid`, sampling on CPU and off (`--idle`); SIGINT makes it write."""
    py_spy = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen(
        [str(py_spy), "record", "--idle", "--format", "raw", "--rate", "200",
         "--output", str(output), "--pid", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def run_dbproc(
    redis_url: str,
    database_url: str,
    totals: dict[str, int],
    workdir: Path,
    profile: Path | None,
    replicas: int = 1,
) -> dict[str, Any]:
    """Start `replicas` dbproc processes and time them until every market's entries
    (`totals`, by market name) are acknowledged."""
    client = redis.Redis.from_url(redis_url)
    logs = [(workdir / f"dbproc-{n}.log").open("wb") for n in range(replicas)]
    spawned = time.perf_counter()
    command = [sys.executable, "-m", "dbproc"]
    envs = [_dbproc_env(redis_url, database_url, n) for n in range(replicas)]
    processes = [
        subprocess.Popen(command, env=env, stdout=out, stderr=out)
        for env, out in zip(envs, logs, strict=True)
    ]
    profiler = None if profile is None else start_profiler(processes[0].pid, profile)
    first: tuple[float, int] | None = None
    try:
        while True:
            for process, log in zip(processes, logs, strict=True):
                if process.poll() is not None:
                    raise RuntimeError(f"dbproc exited with {process.returncode}; see {log.name}")
            acked = sum(_acked(client, name) for name in totals)
            now = time.perf_counter()
            if first is None and acked > 0:
                first = (now, acked)
            if acked == sum(totals.values()):
                break
            time.sleep(0.01)
        done = time.perf_counter()
        cpu = sum(cpu_seconds(process.pid) for process in processes)
    finally:
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=60)
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
        for log in logs:
            log.close()
        client.close()
    assert first is not None
    return {
        "start_to_first_commit_s": round(first[0] - spawned, 3),
        "first_to_last_commit_s": round(done - first[0], 3),
        "entries_in_rate": sum(totals.values()) - first[1],
        "dbproc_cpu_s": round(cpu, 2),
    }


def _dbproc_env(redis_url: str, database_url: str, replica: int) -> dict[str, str]:
    return {
        **os.environ,
        "EXCHANGE_DBPROC_REDIS_URL": redis_url,
        "EXCHANGE_DBPROC_DATABASE_URL": database_url,
        "EXCHANGE_DBPROC_CONSUMER": f"bench-{replica}",
        "EXCHANGE_DBPROC_HEALTH_PORT": "0",
    }


def _acked(client: redis.Redis, market: str) -> int:
    read, pending = group_progress(client, market)
    return read - pending


def profile_summary(raw: Path, top: int = 20) -> dict[str, Any]:
    """py-spy's collapsed stacks of dbproc's event-loop thread as shares of its samples: by
    innermost function (self; `Runner.run` itself is the loop waiting for Redis or
    PostgreSQL) and by any function on the stack (total). Other threads (the idle one Alembic
    ran in) are left out."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = [_frame_name(frame) for frame in stack.split(";")]
        if "Runner.run (runners.py)" not in frames:
            continue
        count = int(count_text)
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count

    def shares(counter: Counter[str]) -> dict[str, float]:
        return {name: round(100 * n / samples, 1) for name, n in counter.most_common(top)}

    return {"samples": samples, "self_percent": shares(own), "total_percent": shares(total)}


def _frame_name(frame: str) -> str:
    """`function (path/file.py:line)` as `function (file.py)`."""
    function, _, where = frame.partition(" (")
    return f"{function} ({where.split(':')[0].rsplit('/', 1)[-1]})" if where else function


async def prepare_database(url: str, markets: Sequence[Market] = (MARKET,)) -> None:
    """The schema, and the markets' klines views, which dbproc's ticker refresh reads."""
    await upgrade(url)
    conn = await asyncpg.connect(url)
    try:
        for market in markets:
            await provision_on(conn, market)
    finally:
        await conn.close()


async def count_rows(database_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        tables = ("trades", "orders", "order_events", "journal", "stored_batches")
        return {t: int(await conn.fetchval(f"SELECT count(*) FROM {t}")) for t in tables}
    finally:
        await conn.close()


def bench_store(orders: int, pg: PostgresServer, workdir: Path, profile: bool) -> dict[str, Any]:
    started = time.perf_counter()
    entries, trades = engine_batches(orders)
    generated = time.perf_counter() - started
    server = start_redis(workdir / "redis")
    try:
        client = redis.Redis.from_url(server.url)
        client.flushall()
        preload(client, entries)
        client.close()
        asyncio.run(prepare_database(pg.url))
        raw = workdir / "profile.txt" if profile else None
        timing = run_dbproc(server.url, pg.url, {MARKET.name: len(entries)}, workdir, raw)
    finally:
        server.stop()
    rows = asyncio.run(count_rows(pg.url))
    if rows["trades"] != trades:
        raise RuntimeError(f"{rows['trades']} trades stored, {trades} expected")
    ratio = timing["entries_in_rate"] / len(entries)
    result: dict[str, Any] = {
        "orders": orders,
        "entries": len(entries),
        "commands_per_entry": BATCH,
        "events_generated_s": round(generated, 2),
        "rows_stored": rows,
        **timing,
        "trades_per_sec": round(trades * ratio / timing["first_to_last_commit_s"]),
        "trades_per_sec_from_start": round(
            trades / (timing["start_to_first_commit_s"] + timing["first_to_last_commit_s"])
        ),
        "read_count": 200,
    }
    if raw is not None:
        result["profile"] = profile_summary(raw)
    return result


# ---- 2. replicas ------------------------------------------------------------------------

SECOND_MARKET = Market.model_validate(
    {"metadata": {"name": "bench-b"}, "spec": MARKET.spec.model_dump(mode="json", by_alias=True)}
)
"""A second market with the first one's spec: two markets' streams to share."""


def bench_replicas(orders: int, pg: PostgresServer, workdir: Path) -> dict[str, Any]:
    """Two markets' streams (the standard workload each) stored by one dbproc, then, into a
    fresh database from a fresh Redis, by two replicas sharing the consumer group."""
    markets = (MARKET, SECOND_MARKET)
    batches = [engine_batches(orders, market) for market in markets]
    trades = sum(count for _, count in batches)
    result: dict[str, Any] = {"markets": len(markets), "orders_per_market": orders}
    for replicas in (1, 2):
        url = asyncio.run(fresh_database(pg, f"replicas_{replicas}"))
        asyncio.run(prepare_database(url, markets))
        server = start_redis(workdir / f"redis-replicas-{replicas}")
        try:
            client = redis.Redis.from_url(server.url)
            totals: dict[str, int] = {}
            for market, (entries, _) in zip(markets, batches, strict=True):
                preload(client, entries, market)
                totals[market.name] = len(entries)
            client.close()
            timing = run_dbproc(server.url, url, totals, workdir, None, replicas)
        finally:
            server.stop()
        ratio = timing["entries_in_rate"] / sum(totals.values())
        result[f"replicas_{replicas}"] = {
            **timing,
            "trades_per_sec": round(trades * ratio / timing["first_to_last_commit_s"]),
        }
    one, two = (result[f"replicas_{n}"]["trades_per_sec"] for n in (1, 2))
    result["two_over_one"] = round(two / one, 2)
    return result


# ---- 3. klines latency ------------------------------------------------------------------

LOAD = """
INSERT INTO trades (market, trade_id, ts, seq, price, qty, quote_qty, maker_order, maker_user,
                    taker_order, taker_user, taker_side, maker_fee, taker_fee)
SELECT $1, i, $2::timestamptz + (i * $3::float8) * INTERVAL '1 second', i, p, q, p * q,
       'm' || i, 'u' || (i % 1000), 't' || i, 'u' || ((i * 7) % 1000),
       CASE WHEN i % 2 = 0 THEN 'buy' ELSE 'sell' END, round(p * q * 0.001, 6), 0
FROM generate_series(1, $4::bigint) AS i,
     LATERAL (SELECT round((30000 + 2000 * sin(i / 200000.0) + random() * 50)::numeric, 2) AS p,
                     round((0.0001 + random() * 0.05)::numeric, 4) AS q) AS x
"""


async def bench_klines(url: str, count: int, queries: int, seed: int) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET maintenance_work_mem = '1GB'")
        step = KLINES_DAYS * 86400 / count
        started = time.perf_counter()
        await conn.execute(LOAD, MARKET.name, KLINES_START, step, count, timeout=3600)
        await candles.rebuild(conn, MARKET.name)  # what dbproc keeps as it stores trades
        loaded = time.perf_counter()
        await provision_on(conn, MARKET)
        provisioned = time.perf_counter()
        await conn.execute("VACUUM ANALYZE trades", timeout=3600)
        await conn.execute("VACUUM ANALYZE candles_1m", timeout=3600)
        vacuumed = time.perf_counter()
        size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('trades'))")
        rng = random.Random(seed)
        days = []
        for _ in range(queries):
            start = KLINES_START + timedelta(minutes=rng.randrange((KLINES_DAYS - 1) * 1440))
            days.append(start)
        samples = []
        first_ms = 0.0
        for n, start in enumerate(days):
            t0 = time.perf_counter()
            day = await fetch_klines(
                conn, MARKET.name, "1m", start, start + timedelta(days=1), 1440
            )
            elapsed = (time.perf_counter() - t0) * 1000
            if len(day) != 1440:
                raise RuntimeError(f"{len(day)} candles for the day from {start}")
            if n == 0:
                first_ms = elapsed
            samples.append(elapsed)
        plan = await conn.fetch(
            f"EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM {relation_name('1m', MARKET.name)} "
            "WHERE bucket >= $1 AND bucket < $2 ORDER BY bucket LIMIT 1440",
            days[0],
            days[0] + timedelta(days=1),
        )
    finally:
        await conn.close()
    ordered = sorted(samples)

    def pct(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)

    return {
        "trades": count,
        "days": KLINES_DAYS,
        "table_size_with_indexes": size,
        "load_s": round(loaded - started, 1),
        "provision_s": round(provisioned - loaded, 1),
        "vacuum_analyze_s": round(vacuumed - provisioned, 1),
        "queries": queries,
        "candles_per_query": 1440,
        "first_query_ms": round(first_ms, 2),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "max_ms": round(ordered[-1], 2),
        "plan": [row[0] for row in plan],
    }


async def fresh_database(pg: PostgresServer, name: str) -> str:
    admin = await asyncpg.connect(pg.url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    url = pg.url.rsplit("/", 1)[0] + "/" + name
    await upgrade(url)
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=400_000)
    parser.add_argument("--klines-trades", type=int, default=KLINES_TRADES)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--profile", action="store_true", help="run dbproc under py-spy")
    parser.add_argument("--skip-klines", action="store_true")
    parser.add_argument("--skip-replicas", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    load_start = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="xch-bench-dbproc-"))
    # Its own directory: the server may run as another user, who must own it.
    pg_dir = Path(tempfile.mkdtemp(prefix="xch-bench-pg-"))
    try:
        pg = start_postgres(pg_dir)
        try:
            store = bench_store(args.orders, pg, workdir, args.profile)
            print(store, file=sys.stderr)
            replicas = None
            if not args.skip_replicas:
                replicas = bench_replicas(args.orders // 2, pg, workdir)
                print(replicas, file=sys.stderr)
            klines = None
            if not args.skip_klines:
                url = asyncio.run(fresh_database(pg, "klines"))
                klines = asyncio.run(bench_klines(url, args.klines_trades, args.queries, seed=1))
        finally:
            pg.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(pg_dir, ignore_errors=True)
    result = {
        "benchmark": "dbproc",
        "store": store,
        "replicas": replicas,
        "klines": klines,
        # The machine is shared: its load says how much of it the figures had.
        "load_average_1m_at_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
    }
    write_result(result, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
