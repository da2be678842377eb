"""Binance's market streams over the same hub and feeds (docs/binance.md).

Raw streams at `/ws/<streamName>` send each payload as it is; combined streams at
`/stream?streams=<a>/<b>` wrap it as `{"stream": NAME, "data": PAYLOAD}`. Both take
SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY and GET_PROPERTY (`combined`).
Stream names: `<symbol>@trade`, `@aggTrade`, `@depth`, `@depth@100ms`, `@depth<5|10|20>`
(with `@100ms` or `@1000ms`), `@kline_<interval>`, `@ticker`, `@miniTicker` and
`@bookTicker`, the symbol in lower case (`btcusd` for the market btc-usd with base BTC and
quote USD); and the all-market `!ticker@arr` and `!miniTicker@arr`. The diff stream carries the
engine's depth events one to one, so `U`/`u` continue each other and match the
`lastUpdateId` of `/api/v3/depth`.
"""

from dataclasses import dataclass
from typing import Any

import orjson

from ws.feeds import MarketFeed
from ws.hub import Hub
from ws.protocol import Stream
from xch.schemas import SELL, Depth, Trade

PARTIAL_LEVELS = (5, 10, 20)
SPEEDS = ("", "100ms", "1000ms")
SYMBOL = r"(?P<symbol>[a-z0-9]{2,20})"
"""How a stream name starts (ws.streams' Binance kinds match the rest)."""


@dataclass(frozen=True, slots=True)
class BinanceStream(Stream):
    """`kind` is one of bn_trade, bn_aggTrade, bn_depth, bn_partial, bn_kline, bn_ticker,
    bn_miniTicker, bn_bookTicker (prefixed so that no native kind has its name), bn_tickers
    and bn_miniTickers (every market's: `market` is ""), or bn_user: the private user-data
    stream (ws.binance_user), named by its listen key (`symbol`), raw on `/ws/<listenKey>`,
    not raw (each event wrapped with its subscription id) on the WebSocket API (ws.ws_api)."""

    symbol: str = ""
    levels: int = 0
    speed: str = ""
    raw: bool = False

    @property
    def name(self) -> str:
        kind = self.kind.removeprefix("bn_")
        if kind == "user":
            return self.symbol
        if kind in EVERY_MARKET:
            return EVERY_MARKET[kind]
        speed = f"@{self.speed}" if self.speed else ""
        if kind == "depth":
            return f"{self.symbol}@depth{speed}"
        if kind == "partial":
            return f"{self.symbol}@depth{self.levels}{speed}"
        if kind == "kline":
            return f"{self.symbol}@kline_{self.interval}"
        return f"{self.symbol}@{kind}"

    @property
    def private(self) -> bool:
        """Only the user-data stream: the all-market streams have no market either."""
        return self.kind == "bn_user"

    @property
    def topic(self) -> str:
        if self.kind == "bn_user":  # per user (hub.topic_of), whatever the listen key
            return "binance:user" if self.raw else "binance:ws-api:user"
        return f"binance:{'raw' if self.raw else 'combined'}:{self.name}"


EVERY_MARKET = {"tickers": "!ticker@arr", "miniTickers": "!miniTicker@arr"}
"""The all-market streams' names, by kind (without its `bn_`)."""


def _topics(name: str) -> tuple[str, str]:
    return f"binance:raw:{name}", f"binance:combined:{name}"


def symbol_of(feed: MarketFeed) -> str:
    return f"{feed.rules.base}{feed.rules.quote}"


class Names:
    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.trade = f"{symbol}@trade"
        self.agg_trade = f"{symbol}@aggTrade"
        self.ticker = f"{symbol}@ticker"
        self.mini_ticker = f"{symbol}@miniTicker"
        self.book_ticker = f"{symbol}@bookTicker"
        suffixes = [f"@{speed}" if speed else "" for speed in SPEEDS]
        self.diffs = [f"{symbol}@depth{suffix}" for suffix in suffixes]
        self.partials = [
            (levels, [f"{symbol}@depth{levels}{suffix}" for suffix in suffixes])
            for levels in PARTIAL_LEVELS
        ]


class Publisher:
    """Publishes for the Binance stream kinds (ws.streams): each payload once per stream
    name and framing, to the streams that have subscribers."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.best: dict[str, tuple[Any, ...]] = {}
        self._names: dict[str, Names] = {}

    def names(self, feed: MarketFeed) -> "Names":
        """Every stream name of the feed's symbol, built once (batches are the hot path)."""
        names = self._names.get(feed.name)
        if names is None:
            names = self._names[feed.name] = Names(symbol_of(feed).lower())
        return names

    def publish(self, name: str, payload: dict[str, Any] | list[dict[str, Any]]) -> None:
        raw, combined = _topics(name)
        if self.hub.has_subscribers(raw):
            self.hub.publish(raw, orjson.dumps(payload).decode())
        if self.hub.has_subscribers(combined):
            self.hub.publish(combined, orjson.dumps({"stream": name, "data": payload}).decode())

    def wanted(self, name: str) -> bool:
        return any(self.hub.has_subscribers(topic) for topic in _topics(name))


# ---- payloads ---------------------------------------------------------------------------


def trade(feed: MarketFeed, event: Trade) -> dict[str, Any]:
    return {
        "e": "trade",
        "E": event.ts,
        "s": symbol_of(feed),
        "t": event.trade_id,
        "p": feed.render.price(event.price),
        "q": feed.render.qty(event.qty),
        "T": event.ts,
        "m": event.taker_side == SELL,
        "M": True,
    }


def agg_trade(feed: MarketFeed, event: Trade) -> dict[str, Any]:
    """Each trade its own aggregate, as in /api/v3/aggTrades."""
    return {
        "e": "aggTrade",
        "E": event.ts,
        "s": symbol_of(feed),
        "a": event.trade_id,
        "p": feed.render.price(event.price),
        "q": feed.render.qty(event.qty),
        "f": event.trade_id,
        "l": event.trade_id,
        "T": event.ts,
        "m": event.taker_side == SELL,
        "M": True,
    }


REMOVED = "0.00000000"
"""A removed level's quantity, written as Binance writes it: clients compare the string
(python-binance's depth cache deletes a level only on exactly this text)."""


def _diff_levels(feed: MarketFeed, levels: list[tuple[int, int]]) -> list[list[str]]:
    render = feed.render
    return [[render.price(price), render.qty(lots) if lots else REMOVED] for price, lots in levels]


def depth_update(feed: MarketFeed, event: Depth) -> dict[str, Any]:
    return {
        "e": "depthUpdate",
        "E": event.ts,
        "s": symbol_of(feed),
        "U": event.first_update_id,
        "u": event.last_update_id,
        "b": _diff_levels(feed, event.bids),
        "a": _diff_levels(feed, event.asks),
    }


def partial_depth(feed: MarketFeed, levels: int) -> dict[str, Any]:
    bids = sorted(feed.bids.items(), reverse=True)[:levels]
    asks = sorted(feed.asks.items())[:levels]
    return {
        "lastUpdateId": feed.last_update_id,
        "bids": feed.render.levels(bids),
        "asks": feed.render.levels(asks),
    }


def _best(feed: MarketFeed) -> tuple[list[str], list[str]]:
    bid = max(feed.bids.items(), default=(0, 0))
    ask = min(feed.asks.items(), default=(0, 0))
    [bid_text] = feed.render.levels([bid])
    [ask_text] = feed.render.levels([ask])
    return bid_text, ask_text


def book_ticker(feed: MarketFeed) -> dict[str, Any]:
    bid, ask = _best(feed)
    return {
        "u": feed.last_update_id,
        "s": symbol_of(feed),
        "b": bid[0],
        "B": bid[1],
        "a": ask[0],
        "A": ask[1],
    }


def kline(feed: MarketFeed, interval: str) -> dict[str, Any]:
    candle = feed.candles[interval]
    assert candle is not None
    render = feed.render
    last = feed.last_trade
    return {
        "e": "kline",
        "E": last[1] if last else candle.close_time,
        "s": symbol_of(feed),
        "k": {
            "t": candle.open_time,
            "T": candle.close_time,
            "s": symbol_of(feed),
            "i": interval,
            "f": -1,
            "L": last[0] if last else -1,
            "o": render.price(candle.open),
            "c": render.price(candle.close),
            "h": render.price(candle.high),
            "l": render.price(candle.low),
            "v": render.qty(candle.volume),
            "n": candle.count,
            "x": False,
            "q": render.quote(candle.quote_volume),
            "V": "0",
            "Q": "0",
            "B": "0",
        },
    }


def ticker(feed: MarketFeed) -> dict[str, Any]:
    stats = feed.ticker
    assert stats is not None
    bid, ask = _best(feed)
    return {
        "e": "24hrTicker",
        "E": stats["close_time"],
        "s": symbol_of(feed),
        "p": stats["price_change"],
        "P": stats["price_change_percent"],
        "w": "0",
        "x": stats["open"],
        "c": stats["last"],
        "Q": "0",
        "b": bid[0],
        "B": bid[1],
        "a": ask[0],
        "A": ask[1],
        "o": stats["open"],
        "h": stats["high"],
        "l": stats["low"],
        "v": stats["volume"],
        "q": stats["quote_volume"],
        "O": stats["open_time"],
        "C": stats["close_time"],
        "F": -1,
        "L": last[0] if (last := feed.last_trade) else -1,
        "n": stats["count"],
    }


def mini_ticker(feed: MarketFeed) -> dict[str, Any]:
    stats = feed.ticker
    assert stats is not None
    return {
        "e": "24hrMiniTicker",
        "E": stats["close_time"],
        "s": symbol_of(feed),
        "c": stats["last"],
        "o": stats["open"],
        "h": stats["high"],
        "l": stats["low"],
        "v": stats["volume"],
        "q": stats["quote_volume"],
    }
