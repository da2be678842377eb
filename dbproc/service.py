"""The database processor: one consumer per market in the registry (markets added later are
picked up), one for the funds stream, and the ticker refresher."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import asyncpg
import redis.asyncio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from dbproc.config import Settings
from dbproc.consumer import Entry, GroupReader, consume, log_lost
from dbproc.epochs import EpochBook, Recorded, shifted
from dbproc.rows import Units
from dbproc.writer import Batch, store_funds, store_market_batches
from storage.klines import compute_ticker
from xch import keys
from xch.market import Market
from xch.marketdata import encode_ticker
from xch.money import minor_unit
from xch.schemas import Funds
from xch.wire import FIELD_EPOCH, FIELD_EVENT, Epoch, as_text, decode_events, decode_funds_entry

StoreFn = Callable[[list[Entry]], Awaitable[None]]

log = logging.getLogger("dbproc")
TICKER_REFRESH_SECONDS = 30.0
"""A ticker is recomputed at least this often: trades also leave its 24-hour window."""
MEMORY_WARNING = 0.8
"""The share of Redis's maxmemory past which dbproc warns."""


class DbprocMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.batches = Counter(
            "dbproc_batches_stored", "Stream entries stored", ["stream"], registry=self.registry
        )
        self.trades = Counter(
            "dbproc_trades_stored", "Trades stored", ["market"], registry=self.registry
        )
        self.errors = Counter(
            "dbproc_store_errors", "Failed reads or stores (retried)", registry=self.registry
        )
        self.lost = Counter(
            "dbproc_events_lost",
            "Stream entries trimmed before they were stored: a gap in history",
            ["stream"],
            registry=self.registry,
        )
        self.redis_used = Gauge(
            "redis_memory_used_bytes", "Redis's used_memory", registry=self.registry
        )
        self.redis_max = Gauge(
            "redis_memory_max_bytes", "Redis's maxmemory (0: no cap)", registry=self.registry
        )
        self.rollbacks = Counter(
            "dbproc_rollbacks",
            "Engine epochs that resumed from an older state than the history stored: Redis "
            "came back older (docs/storage.md, Redis rollback)",
            ["market"],
            registry=self.registry,
        )
        self.rolled_back = Counter(
            "dbproc_events_rolled_back",
            "Stored events that Redis no longer knows after a rollback",
            ["market"],
            registry=self.registry,
        )
        self.store_seconds = Histogram(
            "dbproc_store_seconds",
            "Time to store one read of entries",
            registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


@dataclass
class MarketState:
    market: Market
    units: Units
    task: "asyncio.Task[None]"
    trades_since_ticker: bool = True
    ticker_at: float = field(default=0.0)


class Dbproc:
    def __init__(
        self,
        settings: Settings,
        client: redis.asyncio.Redis,
        pool: asyncpg.Pool,
        metrics: DbprocMetrics,
    ) -> None:
        self.settings = settings
        self.client = client
        self.pool = pool
        self.metrics = metrics
        self.markets: dict[str, MarketState] = {}
        self.ready = False
        self.group: asyncio.TaskGroup | None = None
        self.epochs = EpochBook(self._recorded)

    def _reader(self, stream: str) -> GroupReader:
        s = self.settings
        return GroupReader(
            self.client,
            stream,
            s.consumer,
            s.read_count,
            s.block_ms,
            s.claim_idle_ms,
            self._lost,
        )

    def _lost(self, stream: str, count: int, how: str) -> None:
        self.metrics.lost.labels(stream).inc(count)
        log_lost(stream, count, how)

    def _recorded(self, recorded: Recorded) -> None:
        epoch, market = recorded.epoch, recorded.market
        log.info(
            "dbproc: %s: epoch %d (after %d) resumed at seq %d, trade %d; stored with offsets "
            "%d, %d", market, epoch.epoch, epoch.previous, epoch.seq, epoch.trade_id,
            recorded.offsets.seq, recorded.offsets.trade_id,
        )  # fmt: skip
        if recorded.rolled_back:
            self.metrics.rollbacks.labels(market).inc()
            self.metrics.rolled_back.labels(market).inc(recorded.rolled_back)
            log.error(
                "dbproc: %s: Redis came back older: epoch %d resumed at seq %d, %d stored "
                "events later than that are history Redis no longer knows (balances and open "
                "orders diverge: docs/storage.md, Redis rollback); its events are stored from "
                "seq %d, trade id %d on", market, epoch.epoch, epoch.seq, recorded.rolled_back,
                epoch.seq + 1 + recorded.offsets.seq,
                epoch.trade_id + 1 + recorded.offsets.trade_id,
            )  # fmt: skip

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self.group = group
            await self._watch_registry_once()
            group.create_task(self._consume(keys.FUNDS, self._store_funds))
            group.create_task(self._watch_registry())
            group.create_task(self._refresh_tickers())
            group.create_task(self._watch_redis_memory())
            self.ready = True

    async def _consume(self, stream: str, store: StoreFn, writers: int = 1) -> None:
        await consume(
            self._reader(stream),
            store,
            self.settings.retry_max_seconds,
            self.metrics.errors.inc,
            writers,
        )

    # ---- markets ------------------------------------------------------------------------

    async def _watch_registry(self) -> None:
        while True:
            await asyncio.sleep(self.settings.registry_poll_seconds)
            try:
                await self._watch_registry_once()
            except (redis.exceptions.RedisError, OSError):
                log.warning("dbproc: cannot read the market registry", exc_info=True)

    async def _watch_registry_once(self) -> None:
        """Start a consumer for each new market. A market that leaves the registry keeps its
        consumer: its last events (the close) may still be on the way."""
        assert self.group is not None
        entries = await self.client.hgetall(keys.MARKETS)
        await self._forget_dropped({as_text(name) for name in entries})
        for entry in entries.values():
            try:
                market = Market.from_registry_entry(entry)
            except ValueError:
                log.error("dbproc: unreadable registry entry %r", entry)
                continue
            known = self.markets.get(market.name)
            if known is not None:
                known.market, known.units = market, Units.of(market)
                continue
            task = self.group.create_task(self._consume_market(market.name))
            self.markets[market.name] = MarketState(market, Units.of(market), task)
            log.info("dbproc: consuming %s", market.name)

    async def _forget_dropped(self, registered: set[str]) -> None:
        """Stop consuming a market that left the registry and whose events stream is gone
        (`retention.onDelete: Delete`): there is nothing left to store."""
        for name in [name for name in self.markets if name not in registered]:
            if not await self.client.exists(keys.market_events(name)):
                self.markets.pop(name).task.cancel()
                log.info("dbproc: %s was deleted; stopped consuming it", name)

    async def _consume_market(self, name: str) -> None:
        async def store(entries: list[Entry]) -> None:
            await self._store_market(name, entries)

        await self._consume(keys.market_events(name), store, self.settings.writers)

    async def _store_market(self, name: str, entries: list[Entry]) -> None:
        state = self.markets[name]
        started = time.perf_counter()
        async with self.pool.acquire() as conn:
            # an entry trimmed while pending reads back empty (the reader reported it)
            batches = [await self._batch(conn, name, fields) for _, fields in entries if fields]
            trades = await store_market_batches(conn, name, state.units, batches)
        self.metrics.store_seconds.observe(time.perf_counter() - started)
        self.metrics.batches.labels(name).inc(len(entries))
        if trades:
            self.metrics.trades.labels(name).inc(trades)
            state.trades_since_ticker = True

    async def _batch(
        self, conn: asyncpg.Connection, market: str, fields: dict[bytes, bytes]
    ) -> Batch:
        """An entry's batch, its events under their stored ids (its epoch's offsets)."""
        epoch = Epoch.decode(fields.get(FIELD_EPOCH))
        offsets = await self.epochs.offsets(conn, market, epoch)
        return Batch(shifted(decode_events(fields[FIELD_EVENT]), offsets))

    # ---- funds --------------------------------------------------------------------------

    def _asset_unit(self, asset: str) -> Decimal:
        for state in self.markets.values():
            for spec in (state.market.spec.base, state.market.spec.quote):
                if spec.asset == asset:
                    return minor_unit(spec.scale)
        raise LookupError(f"asset {asset} is in no market of the registry")

    async def _store_funds(self, entries: list[Entry]) -> None:
        movements = []
        for entry_id, fields in entries:
            if not fields:  # trimmed while pending (the reader reported it)
                continue
            entry = decode_funds_entry(fields)
            funds = Funds(
                market="",
                seq=entry.seq,
                input_id=entry_id,
                ts=entry.ts,
                user=entry.user,
                asset=entry.asset,
                amount=entry.amount,
            )
            movements.append((funds, entry.reference, self._asset_unit(entry.asset)))
        async with self.pool.acquire() as conn:
            await store_funds(conn, movements)
        self.metrics.batches.labels(keys.FUNDS).inc(len(entries))

    # ---- Redis memory -------------------------------------------------------------------

    async def _watch_redis_memory(self) -> None:
        """Redis's memory against its cap, as metrics (and a warning past 80%): at the cap
        Redis refuses writes (noeviction), so trading stops before anything is evicted."""
        while True:
            try:
                info = await self.client.info("memory")
            except (redis.exceptions.RedisError, OSError):
                log.warning("dbproc: cannot read Redis's memory", exc_info=True)
            else:
                used, cap = int(info["used_memory"]), int(info["maxmemory"])
                self.metrics.redis_used.set(used)
                self.metrics.redis_max.set(cap)
                if cap and used > MEMORY_WARNING * cap:
                    log.warning("dbproc: Redis uses %d of its %d bytes", used, cap)
            await asyncio.sleep(self.settings.memory_poll_seconds)

    # ---- tickers ------------------------------------------------------------------------

    async def _refresh_tickers(self) -> None:
        while True:
            await asyncio.sleep(self.settings.ticker_seconds)
            for name, state in list(self.markets.items()):
                stale = time.monotonic() - state.ticker_at >= TICKER_REFRESH_SECONDS
                if not (state.trades_since_ticker or stale):
                    continue
                try:
                    await self._refresh_ticker(name, state)
                except (asyncpg.PostgresError, OSError, redis.exceptions.RedisError):
                    log.warning("dbproc: ticker of %s not refreshed", name, exc_info=True)

    async def _refresh_ticker(self, name: str, state: MarketState) -> None:
        state.trades_since_ticker = False
        state.ticker_at = time.monotonic()
        intervals = state.market.spec.klines.intervals
        async with self.pool.acquire() as conn:
            ticker = await compute_ticker(conn, name, intervals, datetime.now(UTC))
        if ticker is None:
            await self.client.delete(keys.market_ticker(name))
        else:
            await self.client.set(keys.market_ticker(name), encode_ticker(ticker))
