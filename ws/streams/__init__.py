"""The stream registry: every kind of stream ws serves, native and Binance-format, one
object each (ws.streams.kind.StreamKind), registered here once.

A new stream is a module with its kind plus one line in one of the tuples below; the
connections (ws.app, ws.binance) and the service look kinds up here and never branch on a
stream's kind. The order of the tuples is the order of the messages of one batch: the
native market streams as each event is applied, then per group (private, Binance) each
kind's `on_event` for every event and `on_batch` for the batch.
"""

import re
from collections.abc import Iterable
from typing import Any

from ws.feeds import MarketFeed
from ws.protocol import ErrorCode, ProtocolError, Request, Stream
from ws.streams.balances import BalancesKind
from ws.streams.depth import (
    BinanceBookTickerKind,
    BinanceDepthKind,
    BinancePartialKind,
    DepthKind,
)
from ws.streams.kind import BinanceKind, Host, MarketKind, PrivateKind, StreamKind
from ws.streams.kline import BinanceKlineKind, KlineKind
from ws.streams.orders import OrdersKind
from ws.streams.portfolio import PortfolioKind
from ws.streams.ticker import (
    BinanceMiniTickerKind,
    BinanceMiniTickersKind,
    BinanceTickerKind,
    BinanceTickersKind,
    TickerKind,
)
from ws.streams.trade import BinanceAggTradeKind, BinanceTradeKind, TradeKind
from ws.streams.user_data import UserDataKind
from xch.schemas import Event
from xch.wire import FundsEntry

MARKET: tuple[MarketKind, ...] = (TradeKind(), KlineKind(), DepthKind(), TickerKind())
"""Native public streams, `KIND@MARKET...`."""
PRIVATE: tuple[PrivateKind, ...] = (OrdersKind(), BalancesKind(), PortfolioKind())
"""Native private streams, named by their kind."""
BINANCE_USER = UserDataKind()
BINANCE: tuple[BinanceKind, ...] = (
    BinanceTradeKind(),
    BinanceAggTradeKind(),
    BinanceDepthKind(),
    BinancePartialKind(),
    BinanceBookTickerKind(),
    BinanceKlineKind(),
    BinanceTickerKind(),
    BinanceMiniTickerKind(),
    BinanceTickersKind(),
    BinanceMiniTickersKind(),
)
"""Binance's market streams, `<symbol>@...`, tried in this order."""

KINDS: dict[str, StreamKind] = {
    kind.kind: kind for kind in (*MARKET, *PRIVATE, BINANCE_USER, *BINANCE)
}
_BINANCE = {kind.kind: kind for kind in BINANCE}


def kind_of(stream: Stream) -> StreamKind:
    return KINDS[stream.kind]


def binance_kind(stream: Stream) -> BinanceKind | None:
    """The kind of a Binance market stream (None for any other)."""
    return _BINANCE.get(stream.kind)


# ---- native names -----------------------------------------------------------------------


def parse_stream(text: Any) -> Stream:
    if not isinstance(text, str) or len(text) > 128:
        raise ProtocolError(ErrorCode.INVALID_PARAMS, "a stream name must be a short string")
    lowered = text.lower()
    for private in PRIVATE:
        stream = private.parse_private(lowered)
        if stream is not None:
            return stream
    kind, at, rest = lowered.partition("@")
    market, _, option = rest.partition("@")
    if at and market:
        for public in MARKET:
            stream = public.parse(kind, market, option)
            if stream is not None:
                return stream
    raise ProtocolError(ErrorCode.UNKNOWN_STREAM, f"unknown stream {text!r}")


def stream_params(request: Request) -> list[Stream]:
    """The streams of a SUBSCRIBE or UNSUBSCRIBE, all valid or none (errors name the first)."""
    params = request.params
    if not isinstance(params, list) or not params:
        raise ProtocolError(
            ErrorCode.INVALID_PARAMS, "params must be a non-empty list of stream names", request.id
        )
    try:
        return [parse_stream(item) for item in params]
    except ProtocolError as exc:
        exc.request_id = request.id
        raise


def match_binance(text: str) -> tuple[BinanceKind, re.Match[str]] | None:
    """The Binance market stream kind a name is of, and the name's parts."""
    for kind in BINANCE:
        match = kind.match(text)
        if match is not None:
            return kind, match
    return None


# ---- fan-out ----------------------------------------------------------------------------


def _overriding(hook: str, kinds: Iterable[StreamKind]) -> list[StreamKind]:
    """The kinds that implement `hook` (the feeds' hot path skips the others)."""
    default = getattr(StreamKind, hook)
    return [kind for kind in kinds if getattr(type(kind), hook) is not default]


class Fanout:
    """The service's feeds tell their changes to the registered kinds through this
    (ws.feeds.FeedListener)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.market = _overriding("on_event", MARKET)
        self.groups = [
            (_overriding("on_event", group), _overriding("on_batch", group))
            for group in ((*PRIVATE, BINANCE_USER), BINANCE)
        ]
        self.tickers = _overriding("on_ticker", KINDS.values())
        self.book_loads = _overriding("on_book_loaded", KINDS.values())
        self.funds_kinds = _overriding("on_funds", KINDS.values())
        self.ticker_kinds = _overriding("wants_ticker", KINDS.values())

    def event(self, feed: MarketFeed, event: Event) -> None:
        for kind in self.market:
            kind.on_event(self.host, feed, event)

    def batch(self, feed: MarketFeed, events: list[Event]) -> None:
        host = self.host
        for per_event, per_batch in self.groups:
            for event in events:
                for kind in per_event:
                    kind.on_event(host, feed, event)
            for kind in per_batch:
                kind.on_batch(host, feed, events)

    def ticker(self, feed: MarketFeed) -> None:
        for kind in self.tickers:
            kind.on_ticker(self.host, feed)

    def book_loaded(self, feed: MarketFeed) -> None:
        for kind in self.book_loads:
            kind.on_book_loaded(self.host, feed)

    def funds(self, funds: FundsEntry) -> None:
        for kind in self.funds_kinds:
            kind.on_funds(self.host, funds)

    def wants_ticker(self, feed: MarketFeed) -> bool:
        return any(kind.wants_ticker(self.host, feed) for kind in self.ticker_kinds)
