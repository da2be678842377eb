"""`trade@M` and Binance's `<symbol>@trade` and `<symbol>@aggTrade` (each trade its own
aggregate): every trade as it happens, no first message."""

import re

from ws import binance_streams
from ws.binance_streams import SYMBOL
from ws.feeds import MarketFeed
from ws.streams.kind import BinanceKind, Host, MarketKind
from xch.schemas import Event, Trade


class TradeKind(MarketKind):
    kind = "trade"

    def on_event(self, host: Host, feed: MarketFeed, event: Event) -> None:
        if isinstance(event, Trade) and feed.hub.has_subscribers(self.topic(feed)):
            self.publish(feed, feed.render.trade(event))


class BinanceTradeKind(BinanceKind):
    kind = "bn_trade"
    pattern = re.compile(rf"{SYMBOL}@trade")

    def on_event(self, host: Host, feed: MarketFeed, event: Event) -> None:
        if isinstance(event, Trade):
            name = host.binance.names(feed).trade
            if host.binance.wanted(name):
                host.binance.publish(name, binance_streams.trade(feed, event))


class BinanceAggTradeKind(BinanceKind):
    kind = "bn_aggTrade"
    pattern = re.compile(rf"{SYMBOL}@aggtrade")

    def on_event(self, host: Host, feed: MarketFeed, event: Event) -> None:
        if isinstance(event, Trade):
            name = host.binance.names(feed).agg_trade
            if host.binance.wanted(name):
                host.binance.publish(name, binance_streams.agg_trade(feed, event))
