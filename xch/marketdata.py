"""Market data published between components: candles and rolling 24-hour tickers.

Amounts are decimal strings, times are Unix milliseconds. dbproc writes a market's `Ticker`
as JSON to `xch.keys.market_ticker`; api and ws read it from there.
"""

import msgspec

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
