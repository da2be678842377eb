"""`ticker@M` and Binance's `<symbol>@ticker`: the 24 h ticker dbproc stores, with this
replica's latest trade overlaid (ws.feeds), polled while someone follows it."""

import re
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


class BinanceTickerKind(BinanceKind):
    kind = "bn_ticker"
    pattern = re.compile(rf"{SYMBOL}@ticker")

    async def prepare(self, host: Host, stream: Stream, user: str | None) -> None:
        await load(host, stream)

    def initial(self, feed: MarketFeed, stream: BinanceStream) -> list[dict[str, Any]]:
        return [] if feed.ticker is None else [binance_streams.ticker(feed)]

    def on_ticker(self, host: Host, feed: MarketFeed) -> None:
        name = host.binance.names(feed).ticker
        if feed.ticker is not None and host.binance.wanted(name):
            host.binance.publish(name, binance_streams.ticker(feed))

    def wants_ticker(self, host: Host, feed: MarketFeed) -> bool:
        return host.binance.wanted(host.binance.names(feed).ticker)
