"""What a kind of stream is: the one object ws.streams registers per kind, native or
Binance-format, and what of the service it may use (`Host`).

A kind parses its names, authorizes a subscriber, prepares what the first message needs
(I/O allowed), gives a new (or resynced) subscriber its first messages, and publishes its
messages when a market's feed changes. Every hook has a default, so a kind implements only
what it serves.
"""

import re
from typing import Any, Protocol

import asyncpg

from ws import protocol
from ws.binance_streams import BinanceStream, Publisher
from ws.binance_user import UserData
from ws.feeds import MarketFeed
from ws.portfolio import PortfolioStream
from ws.private import Private
from ws.protocol import ErrorCode, ProtocolError, Stream
from xch.schemas import Event
from xch.wire import FundsEntry


class Host(Protocol):
    """The service, as the stream kinds see it (ws.service.Service)."""

    feeds: dict[str, MarketFeed]
    pool: asyncpg.Pool | None
    private: Private
    portfolio: PortfolioStream
    binance: Publisher
    binance_users: UserData

    async def feed(self, name: str) -> MarketFeed | None: ...

    async def refresh_tickers(self, feeds: list[MarketFeed]) -> None: ...


class StreamKind:
    """One kind of stream (`Stream.kind`). The feed hooks run without awaiting, in the
    registry's order: a market kind's `on_event` as the feed applies each event, then the
    private and the Binance kinds' `on_event` per event and `on_batch` per batch."""

    kind = ""

    async def authorize(self, host: Host, stream: Stream, user: str | None) -> None:
        """Raise ProtocolError if `user` (None: not authenticated) may not subscribe."""
        if await host.feed(stream.market) is None:
            raise ProtocolError(ErrorCode.UNKNOWN_MARKET, f"unknown market {stream.market!r}")

    async def prepare(self, host: Host, stream: Stream, user: str | None) -> None:
        """Load what the first message needs, before the subscription starts."""

    def snapshots(self, host: Host, stream: Stream, user: str | None) -> list[str]:
        """A new subscriber's first messages, also sent again after a resync."""
        return []

    def subscribed(self, host: Host, stream: Stream, user: str | None) -> None:
        """The subscriber has its first messages."""

    def on_event(self, host: Host, feed: MarketFeed, event: Event) -> None:
        """One event of a batch (a market kind sees only those that changed the feed)."""

    def on_batch(self, host: Host, feed: MarketFeed, events: list[Event]) -> None:
        """A whole batch, after its events."""

    def on_ticker(self, host: Host, feed: MarketFeed) -> None:
        """The feed's ticker changed."""

    def on_book_loaded(self, host: Host, feed: MarketFeed) -> None:
        """The feed reloaded its book from the depth key (a resync after a gap)."""

    def on_funds(self, host: Host, funds: FundsEntry) -> None:
        """A deposit or withdrawal changed the user's balances (outside any market)."""

    def wants_ticker(self, host: Host, feed: MarketFeed) -> bool:
        """True if the feed's ticker must be polled for this kind's subscribers."""
        return False


class MarketKind(StreamKind):
    """A native public stream of one market, `KIND@MARKET` unless a kind parses more."""

    def parse(self, kind: str, market: str, option: str) -> Stream | None:
        """The stream of a lower-case name split at its `@`s; None if not of this kind."""
        if kind != self.kind or option:
            return None
        return Stream(kind, market)

    def stream(self, market: str, option: str = "") -> Stream:
        return Stream(self.kind, market, option)

    def topic(self, feed: MarketFeed, option: str = "") -> str:
        """The name of the feed's stream (looked up per event: cached by the feed)."""
        key = (self.kind, option)
        name = feed.topics.get(key)
        if name is None:
            name = feed.topics[key] = self.stream(feed.name, option).name
        return name

    def publish(self, feed: MarketFeed, payload: dict[str, Any], option: str = "") -> None:
        topic = self.topic(feed, option)
        feed.hub.publish(topic, protocol.data(topic, payload))


class PrivateKind(StreamKind):
    """A private stream, one topic per user; a native one is named by its kind alone."""

    def parse_private(self, name: str) -> Stream | None:
        return Stream(name) if name == self.kind else None

    async def authorize(self, host: Host, stream: Stream, user: str | None) -> None:
        if user is None:
            raise ProtocolError(ErrorCode.AUTH_REQUIRED, f"{stream.name} needs AUTH first")


class BinanceError(Exception):
    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


class BinanceKind(StreamKind):
    """A Binance-format market stream: `<symbol>@...` (ws.binance_streams)."""

    pattern: re.Pattern[str]
    """The name, the symbol as group `symbol`; matched against the lower-cased name unless
    `case_sensitive`."""
    case_sensitive = False

    def match(self, text: str) -> re.Match[str] | None:
        return self.pattern.fullmatch(text if self.case_sensitive else text.lower())

    def stream(self, feed: MarketFeed, match: re.Match[str], raw: bool) -> BinanceStream:
        """Raise BinanceError if the feed's market does not serve it."""
        return BinanceStream(self.kind, feed.name, symbol=match["symbol"].lower(), raw=raw)

    def initial(self, feed: MarketFeed, stream: BinanceStream) -> list[dict[str, Any]]:
        """What a new subscriber gets at once (the diff and trade streams start empty)."""
        return []

    def every_market(self, raw: bool) -> BinanceStream | None:
        """The stream of a name without a symbol (`!ticker@arr`); None for one market's."""
        return None
