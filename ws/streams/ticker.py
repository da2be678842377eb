"""`ticker@M` and Binance's `<symbol>@ticker`, `<symbol>@miniTicker`, `!ticker@arr` and
`!miniTicker@arr`: the 24 h ticker dbproc stores, with this replica's latest trade overlaid
(ws.feeds), polled while someone follows it. The all-market streams send, as Binance's,
an array of the tickers that changed (here: one market's, each time it changes)."""

import re
from collections.abc import Callable
from typing import Any

from ws import binance_streams, protocol
from ws.binance_streams import SYMBOL, BinanceStream
from ws.feeds import MarketFeed
from ws.protocol import Stream
from ws.streams.kind import BinanceKind, Host, MarketKind


async def load(host: Host, stream: Stream) -> None:
    feed = host.feeds.get(stream.market)
    if feed is not None and feed.ticker is None:
        await host.refresh_tickers([feed])


class TickerKind(MarketKind):
    kind = "ticker"

    async def prepare(self, host: Host, stream: Stream, user: str | None) -> None:
        await load(host, stream)

    def snapshots(self, host: Host, stream: Stream, user: str | None) -> list[str]:
        feed = host.feeds.get(stream.market)
        if feed is None or feed.ticker is None:
            return []
        return [protocol.data(self.topic(feed), feed.ticker)]

    def on_ticker(self, host: Host, feed: MarketFeed) -> None:
        if feed.ticker is not None:
            self.publish(feed, feed.ticker)

    def wants_ticker(self, host: Host, feed: MarketFeed) -> bool:
        return feed.hub.has_subscribers(self.topic(feed))


Payload = Callable[[MarketFeed], dict[str, Any]]


class BinanceTickerKind(BinanceKind):
    """`<symbol>@ticker`; subclasses change the name and the payload."""

    kind = "bn_ticker"
    pattern = re.compile(rf"{SYMBOL}@ticker")
    payload: Payload = staticmethod(binance_streams.ticker)

    def name(self, host: Host, feed: MarketFeed) -> str:
        return host.binance.names(feed).ticker

    async def prepare(self, host: Host, stream: Stream, user: str | None) -> None:
        await load(host, stream)

    def initial(self, feed: MarketFeed, stream: BinanceStream) -> list[dict[str, Any]]:
        return [] if feed.ticker is None else [self.payload(feed)]

    def on_ticker(self, host: Host, feed: MarketFeed) -> None:
        name = self.name(host, feed)
        if feed.ticker is not None and host.binance.wanted(name):
            host.binance.publish(name, self.payload(feed))

    def wants_ticker(self, host: Host, feed: MarketFeed) -> bool:
        return host.binance.wanted(self.name(host, feed))


class BinanceMiniTickerKind(BinanceTickerKind):
    kind = "bn_miniTicker"
    pattern = re.compile(rf"{SYMBOL}@miniticker")
    payload: Payload = staticmethod(binance_streams.mini_ticker)

    def name(self, host: Host, feed: MarketFeed) -> str:
        return host.binance.names(feed).mini_ticker


class BinanceTickersKind(BinanceKind):
    """`!ticker@arr`: every market's ticker (the kind's stream has no market)."""

    kind = "bn_tickers"
    pattern = re.compile(r"!ticker@arr")
    payload: Payload = staticmethod(binance_streams.ticker)

    def every_market(self, raw: bool) -> BinanceStream:
        return BinanceStream(self.kind, "", raw=raw)

    async def authorize(self, host: Host, stream: Stream, user: str | None) -> None:
        """Every market's: no market to check."""

    async def prepare(self, host: Host, stream: Stream, user: str | None) -> None:
        await host.refresh_tickers([f for f in host.feeds.values() if f.ticker is None])

    def on_ticker(self, host: Host, feed: MarketFeed) -> None:
        name = BinanceStream(self.kind, "").name
        if feed.ticker is not None and host.binance.wanted(name):
            host.binance.publish(name, [self.payload(feed)])

    def wants_ticker(self, host: Host, feed: MarketFeed) -> bool:
        return host.binance.wanted(BinanceStream(self.kind, "").name)


class BinanceMiniTickersKind(BinanceTickersKind):
    """`!miniTicker@arr`."""

    kind = "bn_miniTickers"
    pattern = re.compile(r"!miniticker@arr")
    payload: Payload = staticmethod(binance_streams.mini_ticker)
