"""dbproc against a real engine, Redis and PostgreSQL: exactly once through kill -9 and a
PostgreSQL outage; tickers in Redis."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio
import yaml

from storage.klines import provision_on
from tests.engine_service.load import Load
from tests.harness.dbproc import DbprocProcess, wait_stored
from tests.harness.engine import EXAMPLE, EngineProcess, load_rules, read_events
from tests.harness.processes import http_get
from tests.harness.servers import PostgresServer, RedisServer
from xch import keys
from xch.market import Market
from xch.marketdata import decode_ticker
from xch.schemas import OrderAccepted, OrderDone, OrderRejected, Trade

MARKET = Market.model_validate(yaml.safe_load(EXAMPLE.read_text()))
RULES = load_rules(EXAMPLE)


@pytest.fixture
def processes() -> Iterator[list[EngineProcess | DbprocProcess]]:
    started: list[EngineProcess | DbprocProcess] = []
    try:
        yield started
    finally:
        for process in started:
            process.kill()


@pytest.fixture
async def stack(
    redis_server: RedisServer,
    redis_client: redis.asyncio.Redis,
    database: str,
    tmp_path: Path,
    processes: list[EngineProcess | DbprocProcess],
) -> AsyncIterator[Callable[..., DbprocProcess]]:
    """A registered, running engine for btc-usd, and a starter of dbproc processes."""
    await redis_client.hset(keys.MARKETS, MARKET.name, MARKET.registry_entry())
    conn = await asyncpg.connect(database)
    try:
        await provision_on(conn, MARKET)
    finally:
        await conn.close()
    engine = EngineProcess(EXAMPLE, redis_server.url, tmp_path / "engine.log")
    engine.start()
    processes.append(engine)
    await engine.wait_ready()

    def start_dbproc(env: dict[str, str] | None = None) -> DbprocProcess:
        dbproc = DbprocProcess(redis_server.url, database, tmp_path / "dbproc.log", env=env or {})
        dbproc.start()
        processes.append(dbproc)
        return dbproc

    yield start_dbproc


async def run_load(load: Load, commands: int) -> None:
    stop = asyncio.Event()
    await load.run(stop, limit=len(load.submitted) + commands)


async def assert_stored_exactly_once(
    client: redis.asyncio.Redis, database: str, load: Load
) -> None:
    await wait_stored(client, database, MARKET.name)
    events = await read_events(client, MARKET.name)
    conn = await asyncpg.connect(database)
    try:
        spans = await conn.fetch(
            "SELECT first_seq, last_seq FROM stored_batches WHERE market = $1 ORDER BY 1",
            MARKET.name,
        )
        expected_next = 1
        for first, last in spans:
            assert first == expected_next, "a gap or an overlap in the stored seqs"
            expected_next = last + 1
        assert expected_next == events[-1].seq + 1
        trade_ids = [r[0] for r in await conn.fetch("SELECT trade_id FROM trades ORDER BY 1")]
        assert trade_ids == [e.trade_id for e in events if isinstance(e, Trade)]
        order_seqs = [r[0] for r in await conn.fetch("SELECT seq FROM order_events ORDER BY 1")]
        kinds = OrderAccepted | OrderRejected | OrderDone
        assert order_seqs == [e.seq for e in events if isinstance(e, kinds)]
        deposits = await conn.fetchval("SELECT count(*) FROM transfers WHERE amount > 0")
        assert deposits == len(load.deposits)
        unbalanced = await conn.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM journal GROUP BY market, seq, asset "
            "HAVING sum(free_delta + locked_delta) <> 0) AS t"
        )
        assert unbalanced == 0
    finally:
        await conn.close()


async def test_kill_and_postgres_outage_lose_and_duplicate_nothing(
    stack: Callable[..., DbprocProcess],
    redis_client: redis.asyncio.Redis,
    database: str,
    postgres_server: PostgresServer,
) -> None:
    load = Load(redis_client, RULES, seed=21, users=20)
    await load.fund()
    dbproc = stack()
    await dbproc.wait_ready()
    await run_load(load, 600)
    dbproc.kill()  # mid-stream: some entries read, not acknowledged
    await run_load(load, 600)
    dbproc = stack()
    await dbproc.wait_ready()
    await run_load(load, 300)
    postgres_server.stop()
    await run_load(load, 600)
    await asyncio.sleep(1.0)  # dbproc retries against a database that is gone
    postgres_server.start()
    await run_load(load, 300)
    await assert_stored_exactly_once(redis_client, database, load)
    assert dbproc.running()
    assert await store_errors(dbproc) > 0, "the outage was never noticed"


async def test_sigterm_while_storing_ends_promptly_and_loses_nothing(
    stack: Callable[..., DbprocProcess], redis_client: redis.asyncio.Redis, database: str
) -> None:
    """SIGTERM while several reads are being stored at once (a backlog, small reads): dbproc
    ends within seconds with exit code 0 (an abandoned store once held a pooled connection
    that closing the pool then waited for forever), and what it had not acknowledged is
    stored by the next one, once."""
    load = Load(redis_client, RULES, seed=23, users=20)
    await load.fund()
    small_reads = {"EXCHANGE_DBPROC_READ_COUNT": "5", "EXCHANGE_DBPROC_WRITERS": "3"}
    for attempt in range(6):
        await run_load(load, 800)  # nobody consumes meanwhile: a backlog
        dbproc = stack(small_reads)
        await dbproc.wait_ready()
        await asyncio.sleep(0.05 * attempt)
        started = time.monotonic()
        assert dbproc.terminate(timeout=20) == 0, dbproc.log_tail()
        assert time.monotonic() - started < 5, "dbproc took too long to end"
    stack()
    await assert_stored_exactly_once(redis_client, database, load)


async def test_ticker_is_kept_in_redis(
    stack: Callable[..., DbprocProcess], redis_client: redis.asyncio.Redis, database: str
) -> None:
    load = Load(redis_client, RULES, seed=22, users=10)
    await load.fund()
    stack()
    await run_load(load, 400)
    await wait_stored(redis_client, database, MARKET.name)
    trades = [e for e in await read_events(redis_client, MARKET.name) if isinstance(e, Trade)]
    assert trades
    for _ in range(100):
        raw = await redis_client.get(keys.market_ticker(MARKET.name))
        ticker = decode_ticker(raw) if raw else None
        if ticker is not None and ticker.count == len(trades):
            break
        await asyncio.sleep(0.1)
    assert ticker is not None and ticker.count == len(trades)
    tick = Decimal(MARKET.spec.tick_size)
    assert Decimal(ticker.last) == trades[-1].price * tick
    assert Decimal(ticker.high) == max(t.price for t in trades) * tick


async def store_errors(dbproc: DbprocProcess) -> float:
    return await metric(dbproc, "dbproc_store_errors_total")


async def metric(dbproc: DbprocProcess, prefix: str, default: float | None = None) -> float:
    _, metrics = await http_get(dbproc.health_port, "/metrics")
    for line in metrics.decode().splitlines():
        if line.startswith(prefix):
            return float(line.split()[1])
    if default is None:
        raise AssertionError(f"no {prefix} metric")
    return default


async def test_events_trimmed_before_dbproc_read_them_are_reported(
    stack: Callable[[], DbprocProcess], redis_client: redis.asyncio.Redis
) -> None:
    stream = keys.market_events(MARKET.name)
    await redis_client.xgroup_create(stream, keys.DBPROC_GROUP, id="0", mkstream=True)
    load = Load(redis_client, RULES, seed=29, users=5)
    await load.fund()
    await run_load(load, 50)
    await asyncio.sleep(0.5)  # the engine committed its last batch
    length = await redis_client.xlen(stream)
    await redis_client.xtrim(stream, maxlen=2, approximate=False)  # what an outside trim does
    dbproc = stack()
    await dbproc.wait_ready()
    lost = f'dbproc_events_lost_total{{stream="{stream}"}}'
    for _ in range(50):
        if await metric(dbproc, lost, default=0.0) > 0:
            break
        await asyncio.sleep(0.1)
    assert await metric(dbproc, lost) == length - 2
    assert f"{length - 2} entries of {stream} lost before being stored" in (
        dbproc.log_file.read_text()
    )


async def test_a_dropped_market_is_no_longer_consumed(
    stack: Callable[..., DbprocProcess], redis_client: redis.asyncio.Redis, database: str
) -> None:
    load = Load(redis_client, RULES, seed=23, users=5)
    await load.fund()
    dbproc = stack()
    await dbproc.wait_ready()
    await run_load(load, 50)
    await wait_stored(redis_client, database, MARKET.name)
    await redis_client.hdel(keys.MARKETS, MARKET.name)
    await redis_client.delete(keys.market_events(MARKET.name))
    for _ in range(100):
        if "stopped consuming" in dbproc.log_file.read_text():
            break
        await asyncio.sleep(0.1)
    assert "btc-usd was deleted; stopped consuming it" in dbproc.log_file.read_text()
    errors = await store_errors(dbproc)
    await asyncio.sleep(1.5)
    assert await store_errors(dbproc) == errors


async def test_redis_memory_and_its_cap_are_metrics(
    stack: Callable[[], DbprocProcess], redis_client: redis.asyncio.Redis
) -> None:
    await redis_client.config_set("maxmemory", str(500 * 2**20))
    try:
        dbproc = stack()
        await dbproc.wait_ready()
        for _ in range(50):  # its first reading, right after it started
            if await metric(dbproc, "redis_memory_max_bytes"):
                break
            await asyncio.sleep(0.1)
        assert await metric(dbproc, "redis_memory_max_bytes") == 500 * 2**20
        assert await metric(dbproc, "redis_memory_used_bytes") > 0
    finally:
        await redis_client.config_set("maxmemory", "0")
