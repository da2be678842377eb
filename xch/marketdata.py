"""Market data published between components: the engine's depth, candles and rolling
24-hour tickers.

The engine writes a market's `DepthValue` (MessagePack) to `xch.keys.market_depth` with every
commit that changed its book; api and ws read it there. dbproc writes a market's `Ticker` as
JSON to `xch.keys.market_ticker`; api and ws read it there. Ticker and candle amounts are
decimal strings, times Unix milliseconds.
"""

from datetime import UTC, datetime

import msgspec

Levels = list[tuple[int, int]]
"""Price levels of one side of a book, best first: (price in ticks, total lots)."""


class DepthValue(msgspec.Struct, frozen=True):
    """The best levels of each side of a market's book after the engine's last commit; the
    depth events that follow it continue from `last_update_id` (an event seq)."""

    last_update_id: int
    bids: Levels
    asks: Levels


_depth_decoder = msgspec.msgpack.Decoder(DepthValue)


def encode_depth(depth: DepthValue) -> bytes:
    return msgspec.msgpack.encode(depth)


def decode_depth(data: bytes | None) -> DepthValue:
    """The depth key's value; `None` (no commit yet) is an empty book."""
    return DepthValue(0, [], []) if data is None else _depth_decoder.decode(data)


KLINE_ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)
"""Where kline buckets start, plus whole intervals: TimescaleDB's default origin, a Monday, so
weekly candles start on Mondays. storage's SQL, ws's live candles and the api's portfolio
buckets all align to it."""
KLINE_ORIGIN_MS = int(KLINE_ORIGIN.timestamp()) * 1000

_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def interval_seconds(interval: str) -> int:
    """Length of a kline interval such as "1m", "15m", "4h", "1d" or "1w" (see
    `xch.market.INTERVAL_PATTERN`)."""
    return int(interval[:-1]) * _UNIT_SECONDS[interval[-1]]


class Kline(msgspec.Struct, frozen=True):
    open_time: int
    close_time: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    count: int


class Ticker(msgspec.Struct, frozen=True):
    market: str
    open_time: int
    close_time: int
    open: str
    high: str
    low: str
    last: str
    volume: str
    quote_volume: str
    count: int
    price_change: str
    price_change_percent: str


def encode_ticker(ticker: Ticker) -> bytes:
    return msgspec.json.encode(ticker)


def decode_ticker(data: bytes | str) -> Ticker:
    return msgspec.json.decode(data, type=Ticker)
