"""Symbols and order ids as Binance names them.

A market with base BTC and quote USD is the symbol `BTCUSD`. Binance order ids are integers;
ours are `{market}.{16 hex digits}`, so an order's `orderId` is that hex number and the
symbol gives the market back. Orders placed here take the hex digits from a per-market
counter (`xch:{M}:order_seq`, drawn in the rate limiter's call: params.signed_order, with a
clock floor so that a restored Redis never repeats one: ledger.numbers): increasing, unique
numbers, as Binance's are, that even JavaScript clients read exactly.
Orders placed through the native api have random digits: their `orderId` is a 64-bit number.
"""

from api.binance.errors import BinanceError, illegal, invalid_symbol
from api.digits import ascii_digits
from api.markets import Registry
from api.services.order_plans import ORDER_ID_SEPARATOR
from xch.market import Market

MAX_ORDER_ID = 2**64 - 1


def symbol_of(market: Market) -> str:
    return f"{market.spec.base.asset}{market.spec.quote.asset}"


async def by_symbol(registry: Registry) -> dict[str, Market]:
    return {symbol_of(market): market for market in (await registry.all()).values()}


async def market_of_symbol(registry: Registry, symbol: str) -> Market:
    """Symbols are upper case, as Binance's REST API wants them."""
    market = (await by_symbol(registry)).get(symbol)
    if market is None:
        raise invalid_symbol()
    return market


def order_id_of(market: str, number: int) -> str:
    return f"{market}{ORDER_ID_SEPARATOR}{number:016x}"


def number_of(order_id: str) -> int:
    return int(order_id.rpartition(ORDER_ID_SEPARATOR)[2], 16)


def parse_order_number(text: str) -> int:
    if not ascii_digits(text, 20) or not 0 < int(text) <= MAX_ORDER_ID:
        raise illegal("orderId")
    return int(text)


def numbered_order_id(market: str, number: int) -> str:
    """The order id of a number drawn from the market's counter (params.signed_order)."""
    if number > MAX_ORDER_ID:
        raise BinanceError(503, -1000, "Order ids exhausted.")
    return order_id_of(market, number)
