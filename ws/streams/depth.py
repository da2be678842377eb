"""The order book: `depth@M` (a snapshot, then every engine batch's changes), `depth@M@100ms`
(the changes of up to 100 ms merged into one diff), and Binance's `<symbol>@depth[@speed]`,
`<symbol>@depth<levels>[@speed]` and `<symbol>@bookTicker`."""

import re
from typing import Any

from ws import binance_streams
from ws.binance_streams import SYMBOL, BinanceStream
from ws.feeds import MarketFeed
from ws.protocol import Stream
from ws.streams.kind import BinanceKind, Host, MarketKind
from xch.schemas import Depth, Event

DEPTH_SPEED = "100ms"
"""`depth@M@100ms`: the changes of up to 100 ms in one diff (fewer messages, as Binance's)."""
_SPEED = r"(?:@(?P<speed>100ms|1000ms))?"


def _book_changed(events: list[Event]) -> bool:
    return any(isinstance(event, Depth) for event in events)


class DepthKind(MarketKind):
    kind = "depth"

    def parse(self, kind: str, market: str, option: str) -> Stream | None:
        if kind != self.kind or option not in ("", DEPTH_SPEED):
            return None
        return Stream(kind, market, option)

    def snapshots(self, host: Host, stream: Stream, user: str | None) -> list[str]:
        feed = host.feeds.get(stream.market)
        # Before its first load the feed's book is not the market's: the load sends the
        # snapshot (on_book_loaded). An empty one here would be followed by diffs it misses.
        if feed is None or not feed.synced:
            return []
        return [feed.depth_snapshot(stream.name)]

    def on_event(self, host: Host, feed: MarketFeed, event: Event) -> None:
        """After the feed applied the event to its book."""
        if not isinstance(event, Depth):
            return
        topic = self.topic(feed)
        if feed.hub.has_subscribers(topic):
            payload = feed.render.depth_update(
                event.first_update_id, event.last_update_id, event.bids, event.asks, event.ts
            )
            self.publish(feed, payload)
        merged = self.topic(feed, DEPTH_SPEED)
        if feed.hub.has_subscribers(merged):
            feed.merge(event, merged)

    def on_book_loaded(self, host: Host, feed: MarketFeed) -> None:
        """Every depth subscriber starts over from a fresh snapshot."""
        for topic in (self.topic(feed), self.topic(feed, DEPTH_SPEED)):
            if feed.hub.has_subscribers(topic):
                feed.hub.publish(topic, feed.depth_snapshot(topic))


class BinanceDepthKind(BinanceKind):
    """The diff stream: the engine's depth events one to one (`U`/`u` chain)."""

    kind = "bn_depth"
    pattern = re.compile(rf"{SYMBOL}@depth{_SPEED}")

    def stream(self, feed: MarketFeed, match: re.Match[str], raw: bool) -> BinanceStream:
        symbol, speed = match["symbol"].lower(), match["speed"] or ""
        return BinanceStream(self.kind, feed.name, symbol=symbol, speed=speed, raw=raw)

    def on_event(self, host: Host, feed: MarketFeed, event: Event) -> None:
        if not isinstance(event, Depth):
            return
        payload = None
        for name in host.binance.names(feed).diffs:
            if host.binance.wanted(name):
                payload = payload or binance_streams.depth_update(feed, event)
                host.binance.publish(name, payload)


class BinancePartialKind(BinanceKind):
    """The best `levels` of each side, after every batch that changed the book."""

    kind = "bn_partial"
    pattern = re.compile(rf"{SYMBOL}@depth(?P<levels>5|10|20){_SPEED}")

    def stream(self, feed: MarketFeed, match: re.Match[str], raw: bool) -> BinanceStream:
        symbol, speed, levels = match["symbol"].lower(), match["speed"] or "", match["levels"]
        return BinanceStream(
            self.kind, feed.name, symbol=symbol, levels=int(levels), speed=speed, raw=raw
        )

    def initial(self, feed: MarketFeed, stream: BinanceStream) -> list[dict[str, Any]]:
        return [binance_streams.partial_depth(feed, stream.levels)]

    def on_batch(self, host: Host, feed: MarketFeed, events: list[Event]) -> None:
        if not _book_changed(events):
            return
        for levels, names in host.binance.names(feed).partials:
            snapshot = None
            for name in names:
                if host.binance.wanted(name):
                    snapshot = snapshot or binance_streams.partial_depth(feed, levels)
                    host.binance.publish(name, snapshot)


class BinanceBookTickerKind(BinanceKind):
    """The best bid and ask, when a batch changed them."""

    kind = "bn_bookTicker"
    pattern = re.compile(rf"{SYMBOL}@bookticker")

    def initial(self, feed: MarketFeed, stream: BinanceStream) -> list[dict[str, Any]]:
        return [binance_streams.book_ticker(feed)]

    def on_batch(self, host: Host, feed: MarketFeed, events: list[Event]) -> None:
        name = host.binance.names(feed).book_ticker
        if not _book_changed(events) or not host.binance.wanted(name):
            return
        payload = binance_streams.book_ticker(feed)
        best = (payload["b"], payload["B"], payload["a"], payload["A"])
        if host.binance.best.get(feed.name) != best:
            host.binance.best[feed.name] = best
            host.binance.publish(name, payload)
