"""`kline_<interval>@M` and Binance's `<symbol>@kline_<interval>`: the current candle, first
seeded from storage, then after each trade (for the intervals of the market's spec)."""

import re
from dataclasses import dataclass
from typing import Any

from ws import binance_streams, protocol
from ws.binance_streams import SYMBOL, BinanceStream
from ws.feeds import MarketFeed
from ws.protocol import ErrorCode, ProtocolError, Stream
from ws.render import Candle
from ws.streams.kind import BinanceError, BinanceKind, Host, MarketKind
from xch.market import INTERVAL_PATTERN
from xch.schemas import Event, Trade

_INTERVAL = re.compile(INTERVAL_PATTERN)


@dataclass(frozen=True, slots=True)
class KlineStream(Stream):
    """Named `kline_<interval>@M`: the interval leads, as in Binance's names."""

    @property
    def name(self) -> str:
        return f"kline_{self.interval}@{self.market}"


async def seed(host: Host, stream: Stream) -> None:
    feed = host.feeds.get(stream.market)
    if feed is not None:
        await feed.seed_klines(stream.interval, host.pool)


class KlineKind(MarketKind):
    kind = "kline"

    def parse(self, kind: str, market: str, option: str) -> Stream | None:
        interval = kind.removeprefix("kline_")
        if option or not kind.startswith("kline_") or not _INTERVAL.fullmatch(interval):
            return None
        return self.stream(market, interval)

    def stream(self, market: str, option: str = "") -> Stream:
        return KlineStream(self.kind, market, option)

    async def authorize(self, host: Host, stream: Stream, user: str | None) -> None:
        feed = await host.feed(stream.market)
        if feed is None:
            raise ProtocolError(ErrorCode.UNKNOWN_MARKET, f"unknown market {stream.market!r}")
        if stream.interval not in feed.market.spec.klines.intervals:
            raise ProtocolError(
                ErrorCode.UNKNOWN_STREAM, f"{stream.market} has no {stream.interval} klines"
            )

    async def prepare(self, host: Host, stream: Stream, user: str | None) -> None:
        await seed(host, stream)

    def snapshots(self, host: Host, stream: Stream, user: str | None) -> list[str]:
        feed = host.feeds.get(stream.market)
        candle = None if feed is None else feed.candles.get(stream.interval)
        if feed is None or candle is None:
            return []
        return [self.message(feed, stream.interval, candle)]

    def message(self, feed: MarketFeed, interval: str, candle: Candle) -> str:
        return protocol.data(self.topic(feed, interval), feed.render.kline(interval, candle))

    def on_event(self, host: Host, feed: MarketFeed, event: Event) -> None:
        """After the feed folded the trade into every candle it follows."""
        if not isinstance(event, Trade):
            return
        for interval, candle in feed.candles.items():
            topic = self.topic(feed, interval)
            if candle is not None and feed.hub.has_subscribers(topic):
                feed.hub.publish(topic, self.message(feed, interval, candle))


class BinanceKlineKind(BinanceKind):
    kind = "bn_kline"
    pattern = re.compile(rf"{SYMBOL}@kline_(?P<interval>[1-9][0-9]*[smhdwM])")

    def match(self, text: str) -> re.Match[str] | None:
        """Intervals are case-sensitive (`1m` is a minute, `1M` a month)."""
        return self.pattern.fullmatch(text if "@kline_" in text else text.lower())

    def stream(self, feed: MarketFeed, match: re.Match[str], raw: bool) -> BinanceStream:
        interval = match["interval"]
        if interval not in feed.market.spec.klines.intervals:
            raise BinanceError(
                2, f"Invalid request: {match.string} is not served (no such interval)"
            )
        symbol = match["symbol"].lower()
        return BinanceStream(self.kind, feed.name, interval, symbol=symbol, raw=raw)

    async def prepare(self, host: Host, stream: Stream, user: str | None) -> None:
        await seed(host, stream)

    def initial(self, feed: MarketFeed, stream: BinanceStream) -> list[dict[str, Any]]:
        if feed.candles.get(stream.interval) is None:
            return []
        return [binance_streams.kline(feed, stream.interval)]

    def on_batch(self, host: Host, feed: MarketFeed, events: list[Event]) -> None:
        if not any(isinstance(event, Trade) for event in events):
            return
        symbol = host.binance.names(feed).symbol
        for interval, candle in feed.candles.items():
            name = f"{symbol}@kline_{interval}"
            if candle is not None and host.binance.wanted(name):
                host.binance.publish(name, binance_streams.kline(feed, interval))
