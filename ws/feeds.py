"""One market as this replica sees it: the book rebuilt from its depth key and depth events,
the latest trade, the current candles and the ticker. What changes is told to the listener
(the stream kinds of ws.streams, which publish it).

The reader (ws/service.py) applies each events entry whole, in order, without awaiting in
between, so a subscriber added between two entries gets a snapshot that the following diffs
continue exactly.
"""

import asyncio
import logging
import time
from collections import deque
from decimal import Decimal
from typing import Any, Protocol

import asyncpg
import msgspec

from storage.klines import fetch_klines, utc_from_ms
from ws import protocol
from ws.hub import Hub
from ws.metrics import WsMetrics
from ws.render import Candle, Renderer
from xch.market import Market
from xch.marketdata import (
    KLINE_ORIGIN_MS,
    Kline,
    Ticker,
    decode_depth,
    decode_ticker,
    interval_seconds,
)
from xch.money import AmountError, format_decimal, parse_decimal
from xch.schemas import Depth, Event, Trade

RECENT_TRADES = 100_000
MERGE_SECONDS = 0.1

log = logging.getLogger(__name__)


def bucket_start(ts: int, interval: str) -> int:
    length = interval_seconds(interval) * 1000
    return ts - (ts - KLINE_ORIGIN_MS) % length


def fold(candle: Candle | None, interval: str, trade: tuple[int, int, int, int, int]) -> Candle:
    """`candle` with one more trade (trade_id, ts, price, qty, quote_qty); a trade of a later
    bucket starts a new candle."""
    _, ts, price, qty, quote_qty = trade
    start = bucket_start(ts, interval)
    if candle is None or start > candle.open_time:
        close_time = start + interval_seconds(interval) * 1000 - 1
        return Candle(start, close_time, price, price, price, price, qty, quote_qty, 1)
    if start < candle.open_time:
        return candle
    return Candle(
        candle.open_time,
        candle.close_time,
        candle.open,
        max(candle.high, price),
        min(candle.low, price),
        price,
        candle.volume + qty,
        candle.quote_volume + quote_qty,
        candle.count + 1,
    )


class FeedListener(Protocol):
    """Told of every change, in order, without awaiting (ws.streams.Fanout)."""

    def event(self, feed: "MarketFeed", event: Event) -> None:
        """A trade, or a depth event that changed the book, as the feed applied it."""

    def batch(self, feed: "MarketFeed", events: list[Event]) -> None:
        """A whole batch, after its events."""

    def ticker(self, feed: "MarketFeed") -> None: ...

    def book_loaded(self, feed: "MarketFeed") -> None: ...


class MarketFeed:
    def __init__(
        self,
        market: Market,
        hub: Hub,
        metrics: WsMetrics,
        depth_levels: int,
        listener: FeedListener,
    ) -> None:
        self.market = market
        self.rules = market.rules()
        self.name = market.name
        self.render = Renderer(self.rules)
        self.hub = hub
        self.metrics = metrics
        self.depth_levels = depth_levels
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.last_update_id = 0
        self.topics: dict[tuple[str, str], str] = {}
        """Stream names by (kind, option), built once (ws.streams.kind.MarketKind.topic)."""
        self._snapshots: dict[str, tuple[int, str]] = {}
        # depth@M@100ms: levels changed since its last diff, from update id `_merged_first`.
        self._merged_topic = ""
        self._merged: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self._merged_first = 0
        self._merged_flush: asyncio.TimerHandle | None = None
        self._merged_sent = 0.0
        self.synced = False
        self.last_trade: tuple[int, int, int, int, int] | None = None
        self.recent: deque[tuple[int, int, int, int, int]] = deque(maxlen=RECENT_TRADES)
        self.candles: dict[str, Candle | None] = {}
        self._seed_locks: dict[str, asyncio.Lock] = {}
        self.ticker: dict[str, Any] | None = None
        self.listener = listener

    # ---- depth --------------------------------------------------------------------------

    def load_depth(self, raw: bytes | None) -> None:
        """Replace the book with the depth key's value and send every depth subscriber a
        fresh snapshot; at the first load too, to those who subscribed while the feed waited
        for it (they were given no snapshot of the empty book)."""
        value = decode_depth(raw)
        self._snapshots.clear()
        self._drop_merged()
        self.bids = dict(value.bids)
        self.asks = dict(value.asks)
        self.last_update_id = value.last_update_id
        self.synced = True
        self.listener.book_loaded(self)

    def depth_snapshot(self, topic: str) -> str:
        """Rendered once per book state: many clients may ask for it at once (a resync)."""
        cached = self._snapshots.get(topic)
        if cached is None or cached[0] != self.last_update_id:
            bids = sorted(self.bids.items(), reverse=True)[: self.depth_levels]
            asks = sorted(self.asks.items())[: self.depth_levels]
            payload = self.render.depth_snapshot(self.last_update_id, bids, asks)
            cached = self._snapshots[topic] = (self.last_update_id, protocol.data(topic, payload))
        return cached[1]

    def depth_gap(self, event: Depth) -> bool:
        """True if `event` does not continue the book (a reload from the key is needed)."""
        return event.last_update_id > self.last_update_id and (
            event.first_update_id != self.last_update_id + 1
        )

    def _apply_depth(self, event: Depth) -> bool:
        """False if the event was already in the book (it was loaded after this event)."""
        if event.last_update_id <= self.last_update_id:
            return False
        for side, levels in ((self.bids, event.bids), (self.asks, event.asks)):
            for price, lots in levels:
                if lots:
                    side[price] = lots
                else:
                    side.pop(price, None)
        self.last_update_id = event.last_update_id
        return True

    def merge(self, event: Depth, topic: str) -> None:
        """Fold the event into the pending merged diff of `topic` (`depth@M@100ms`); send it
        at most every 100 ms."""
        self._merged_topic = topic
        if not self._merged_first:
            self._merged_first = event.first_update_id
        self._merged[0].update(event.bids)
        self._merged[1].update(event.asks)
        if self._merged_flush is None:
            wait = max(0.0, self._merged_sent + MERGE_SECONDS - time.monotonic())
            loop = asyncio.get_running_loop()
            self._merged_flush = loop.call_later(wait, self._send_merged)

    def _send_merged(self) -> None:
        self._merged_flush = None
        self._merged_sent = time.monotonic()
        topic = self._merged_topic
        bids = sorted(self._merged[0].items(), reverse=True)
        asks = sorted(self._merged[1].items())
        payload = self.render.depth_update(
            self._merged_first, self.last_update_id, bids, asks, int(time.time() * 1000)
        )
        self._drop_merged()
        self.hub.publish(topic, protocol.data(topic, payload))

    def _drop_merged(self) -> None:
        if self._merged_flush is not None:
            self._merged_flush.cancel()
            self._merged_flush = None
        self._merged = ({}, {})
        self._merged_first = 0

    # ---- events -------------------------------------------------------------------------

    def apply(self, events: list[Event]) -> None:
        """One committed batch, in seq order. Depth gaps are checked by the reader first."""
        listener = self.listener
        for event in events:
            if isinstance(event, Trade):
                self._apply_trade(event)
                listener.event(self, event)
            elif isinstance(event, Depth) and self._apply_depth(event):
                listener.event(self, event)
        listener.batch(self, events)

    def _apply_trade(self, event: Trade) -> None:
        trade = (event.trade_id, event.ts, event.price, event.qty, event.quote_qty)
        self.last_trade = trade
        self.recent.append(trade)
        for interval, candle in self.candles.items():
            self.candles[interval] = fold(candle, interval, trade)

    # ---- klines -------------------------------------------------------------------------

    async def seed_klines(self, interval: str, pool: asyncpg.Pool | None) -> None:
        """Start following `interval`: the current bucket's candle from storage, plus the
        trades seen here that storage did not have yet."""
        lock = self._seed_locks.setdefault(interval, asyncio.Lock())
        async with lock:
            if interval in self.candles:
                return
            now = max(int(time.time() * 1000), self.last_trade[1] if self.last_trade else 0)
            start = bucket_start(now, interval)
            candle, stored_up_to = None, 0
            if pool is not None:
                candle, stored_up_to = await self._stored(pool, interval, start)
            # No await from here on: trades the reader applied meanwhile are in `recent`.
            for trade in self.recent:
                if trade[0] > stored_up_to:
                    candle = fold(candle, interval, trade)
            self.candles[interval] = candle

    async def _stored(
        self, pool: asyncpg.Pool, interval: str, start: int
    ) -> tuple[Candle | None, int]:
        """The stored candle of the bucket at `start` and the last trade id storage holds from
        there on, read in one snapshot of the database. Storage is best effort: without it
        the candle starts from the trades this replica sees."""
        end = start + interval_seconds(interval) * 1000
        try:
            async with (
                pool.acquire() as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                klines = await fetch_klines(
                    conn, self.name, interval, utc_from_ms(start), utc_from_ms(end), 1
                )
                stored_up_to = await conn.fetchval(
                    "SELECT coalesce(max(trade_id), 0) FROM trades WHERE market = $1 AND ts >= $2",
                    self.name,
                    utc_from_ms(start),
                )
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("no stored klines for %s %s: %s", self.name, interval, exc)
            return None, 0
        if not klines:
            return None, int(stored_up_to)
        try:
            return self._candle(klines[0]), int(stored_up_to)
        except AmountError as exc:
            log.error(
                "stored kline of %s %s not in the market's units: %s", self.name, interval, exc
            )
            return None, 0

    def _candle(self, k: Kline) -> Candle:
        rules = self.rules
        return Candle(
            k.open_time,
            k.close_time,
            rules.price_to_ticks(k.open),
            rules.price_to_ticks(k.high),
            rules.price_to_ticks(k.low),
            rules.price_to_ticks(k.close),
            rules.qty_to_lots(k.volume),
            rules.quote_to_minor(k.quote_volume),
            k.count,
        )

    # ---- ticker -------------------------------------------------------------------------

    def update_ticker(self, raw: bytes | None) -> None:
        """The ticker dbproc stored, with this replica's latest trade price overlaid; sent to
        subscribers when it changed."""
        if raw is None:
            return
        try:
            payload = self._overlay(decode_ticker(raw))
        except (msgspec.DecodeError, AmountError, ArithmeticError):
            return
        if payload != self.ticker:
            self.ticker = payload
            self.listener.ticker(self)

    def _overlay(self, ticker: Ticker) -> dict[str, Any]:
        payload: dict[str, Any] = {"type": "ticker", **msgspec.structs.asdict(ticker)}
        if self.last_trade is None or self.last_trade[1] < ticker.open_time:
            return payload
        last = parse_decimal(self.render.price(self.last_trade[2]))
        opening = parse_decimal(ticker.open)
        change = last - opening
        percent = (change * 100 / opening).quantize(Decimal("0.01")) if opening else Decimal(0)
        payload["last"] = format_decimal(last)
        payload["high"] = format_decimal(max(last, parse_decimal(ticker.high)))
        payload["low"] = format_decimal(min(last, parse_decimal(ticker.low)))
        payload["price_change"] = format_decimal(change)
        payload["price_change_percent"] = format_decimal(percent)
        return payload
