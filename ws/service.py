"""What one ws replica runs besides its connections: a reader per market's events stream, the
registry watch that starts them, the ticker poll and the funds reader. What they read goes
to the stream kinds of ws.streams (`Fanout`).

Each replica reads every stream itself (plain XREAD, no consumer group), starting from the
newest entry, so replicas are independent and a restarted one only needs its clients to
resubscribe: a depth subscription starts with a snapshot.
"""

import asyncio
import logging
import time
from typing import Any

import asyncpg
import msgspec
import redis.asyncio
from redis.exceptions import RedisError

from runtime.addresses import ClientAddresses
from runtime.auth_failures import FailureBackoff
from ws.binance_streams import Publisher
from ws.binance_user import UserData
from ws.config import Settings
from ws.feeds import MarketFeed
from ws.hub import Hub
from ws.internal_api import InternalApi
from ws.metrics import WsMetrics
from ws.portfolio import PortfolioStream
from ws.private import Private
from ws.protocol import Stream
from ws.streams import Fanout, kind_of
from xch import keys
from xch.market import Market
from xch.schemas import Depth
from xch.wire import FIELD_EVENT, decode_events, decode_funds_entry

log = logging.getLogger(__name__)
READ_COUNT = 100
"""Entries per XREAD: a catching-up reader hands each client at most a few hundred messages
before the senders run again (queues hold `queue_size`)."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ms(entry_id: str) -> int:
    return int(entry_id.partition("-")[0])


class Service:
    def __init__(
        self,
        settings: Settings,
        client: redis.asyncio.Redis,
        pool: asyncpg.Pool | None,
        metrics: WsMetrics,
        tasks: asyncio.TaskGroup,
    ) -> None:
        self.settings = settings
        self.client = client
        self.pool = pool
        self.metrics = metrics
        self.tasks = tasks
        self.addresses = ClientAddresses(settings.trusted_proxies)
        self.failures = FailureBackoff(
            client, settings.auth_failure_memory_seconds, settings.auth_backoff_max_seconds
        )
        self.hub = Hub(metrics, settings.max_resyncs, self.snapshots)
        self.private = Private(self.hub, client, settings.retry_seconds)
        self.portfolio = PortfolioStream(
            self.hub, client, pool, settings.portfolio_seconds, settings.retry_seconds
        )
        self.binance = Publisher(self.hub)
        self.binance_users = UserData(self.hub)
        self.internal_api = InternalApi(settings.api_url, settings.jwt_secret)
        self.fanout = Fanout(self)
        self.feeds: dict[str, MarketFeed] = {}
        self.readers: dict[str, asyncio.Task[None]] = {}
        self.ready = False
        self.running = True

    def start(self) -> list[asyncio.Task[None]]:
        return [
            self.tasks.create_task(self.watch_registry()),
            self.tasks.create_task(self.poll_tickers()),
            self.tasks.create_task(self.read_funds()),
            self.tasks.create_task(self.private.run()),
            self.tasks.create_task(self.portfolio.run()),
        ]

    def stop(self) -> None:
        """Cancel the readers; the flag ends the loops also where a Redis call swallowed the
        cancellation (Python 3.11's wait_for can), within one XREAD block at most."""
        self.running = False
        self.private.running = False
        self.private.wake.set()
        self.portfolio.running = False
        self.portfolio.wake.set()
        for task in self.readers.values():
            task.cancel()

    def snapshots(self, stream: Stream, user: str | None) -> list[str]:
        return kind_of(stream).snapshots(self, stream, user)

    # ---- markets ------------------------------------------------------------------------

    async def watch_registry(self) -> None:
        while self.running:
            try:
                self.sync_markets(await self.client.hgetall(keys.MARKETS))
                self.ready = True
            except RedisError as exc:
                log.warning("registry read failed: %s", exc)
            await asyncio.sleep(self.settings.registry_seconds)

    def sync_markets(self, entries: dict[Any, Any]) -> None:
        markets: dict[str, Market] = {}
        for name, raw in entries.items():
            try:
                markets[_text(name)] = Market.from_registry_entry(raw)
            except ValueError as exc:
                log.warning("bad registry entry %r: %s", name, exc)
        for name, market in markets.items():
            self.add_market(market)
            self.feeds[name].market = market  # its kline intervals may have changed
        for name in set(self.feeds) - set(markets):
            self.readers.pop(name).cancel()
            del self.feeds[name]
        self.metrics.markets.set(len(self.feeds))

    def add_market(self, market: Market) -> MarketFeed:
        feed = self.feeds.get(market.name)
        if feed is None:
            feed = MarketFeed(
                market, self.hub, self.metrics, self.settings.depth_levels, self.fanout
            )
            self.feeds[market.name] = feed
            self.readers[market.name] = self.tasks.create_task(self.read_market(feed))
            rules = feed.rules
            self.private.scales[rules.base] = rules.base_scale
            self.private.scales[rules.quote] = rules.quote_scale
        return feed

    async def feed(self, name: str) -> MarketFeed | None:
        """The market's feed; a market added to the registry since the last read is looked up
        at once, so a client need not wait for the next registry read."""
        feed = self.feeds.get(name)
        if feed is not None:
            return feed
        raw = await self.client.hget(keys.MARKETS, name)
        if raw is None:
            return None
        try:
            return self.add_market(Market.from_registry_entry(raw))
        except ValueError:
            return None

    # ---- events -------------------------------------------------------------------------

    async def read_market(self, feed: MarketFeed) -> None:
        key = keys.market_events(feed.name)
        last_id: str | None = None
        while self.running and self.feeds.get(feed.name) is feed:
            try:
                if last_id is None:
                    last_id = await self.load_depth(feed, with_position=True)
                reply: Any = await self.client.xread(
                    {key: last_id}, count=READ_COUNT, block=self.settings.block_ms
                )
                for _, entries in reply:
                    for entry_id, fields in entries:
                        last_id = _text(entry_id)
                        await self.apply_entry(feed, last_id, fields)
            except (RedisError, OSError, msgspec.DecodeError) as exc:
                # a bad depth key is retried too: the engine rewrites it with its next batch
                log.warning("reading %s failed: %s", key, exc)
                await asyncio.sleep(self.settings.retry_seconds)

    async def load_depth(self, feed: MarketFeed, with_position: bool = False) -> str:
        """Load the book from the depth key; with the events stream's newest id read in the
        same transaction, where reading continues so that no diff is missed."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.get(keys.market_depth(feed.name))
            pipe.xrevrange(keys.market_events(feed.name), count=1)
            raw, newest = await pipe.execute()
        feed.load_depth(raw)
        if not with_position:
            self.metrics.depth_resyncs.labels(feed.name).inc()
        return _text(newest[0][0]) if newest else "0-0"

    async def apply_entry(self, feed: MarketFeed, entry_id: str, fields: dict[Any, Any]) -> None:
        try:
            events = decode_events(fields[FIELD_EVENT])
        except (KeyError, msgspec.DecodeError) as exc:
            log.error("undecodable entry %s of %s: %s", entry_id, feed.name, exc)
            return
        if any(isinstance(e, Depth) and feed.depth_gap(e) for e in events):
            await self.load_depth(feed)
        feed.apply(events)
        self.metrics.event_batches.labels(feed.name).inc()
        self.metrics.event_lag.labels(feed.name).observe(
            max(0.0, time.time() - _ms(entry_id) / 1000)
        )

    # ---- tickers and funds --------------------------------------------------------------

    async def poll_tickers(self) -> None:
        while self.running:
            await asyncio.sleep(self.settings.ticker_seconds)
            feeds = [f for f in self.feeds.values() if self.fanout.wants_ticker(f)]
            try:
                await self.refresh_tickers(feeds)
            except RedisError as exc:
                log.warning("ticker read failed: %s", exc)

    async def refresh_tickers(self, feeds: list[MarketFeed]) -> None:
        if not feeds:
            return
        values: list[Any] = await self.client.mget([keys.market_ticker(f.name) for f in feeds])
        for feed, raw in zip(feeds, values, strict=True):
            feed.update_ticker(raw)

    async def read_funds(self) -> None:
        """Deposits and withdrawals change balances outside any market's events."""
        last_id: str | None = None
        while self.running:
            try:
                if last_id is None:
                    newest = await self.client.xrevrange(keys.FUNDS, count=1)
                    last_id = _text(newest[0][0]) if newest else "0-0"
                reply: Any = await self.client.xread(
                    {keys.FUNDS: last_id}, count=READ_COUNT, block=self.settings.block_ms
                )
                for _, entries in reply:
                    for entry_id, fields in entries:
                        last_id = _text(entry_id)
                        try:
                            funds = decode_funds_entry(fields)
                        except (KeyError, ValueError) as exc:
                            log.error("undecodable funds entry %s: %s", last_id, exc)
                            continue
                        self.fanout.funds(funds)
            except (RedisError, OSError) as exc:
                log.warning("reading the funds stream failed: %s", exc)
                await asyncio.sleep(self.settings.retry_seconds)
