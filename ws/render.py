"""Events and market state as the JSON payloads clients receive: every amount a decimal string
in the market's units (ticks, lots and minor units are never sent as integers)."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from xch.market import MarketRules
from xch.money import format_minor, format_units
from xch.schemas import (
    BUY,
    SELL,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderTriggered,
    Trade,
)


@dataclass(frozen=True, slots=True)
class Candle:
    """The current kline of one interval, in integer units."""

    open_time: int
    close_time: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    quote_volume: int
    count: int


class Renderer:
    def __init__(self, rules: MarketRules) -> None:
        self.rules = rules
        self.market = rules.name

    def price(self, ticks: int) -> str:
        return format_units(ticks, self.rules.tick)

    def qty(self, lots: int) -> str:
        return format_units(lots, self.rules.lot)

    def quote(self, minor: int) -> str:
        return format_minor(minor, self.rules.quote_scale)

    def base(self, minor: int) -> str:
        return format_minor(minor, self.rules.base_scale)

    def levels(self, levels: Iterable[tuple[int, int]]) -> list[list[str]]:
        return [[self.price(price), self.qty(lots)] for price, lots in levels]

    def trade(self, trade: Trade) -> dict[str, Any]:
        return {
            "type": "trade",
            "market": self.market,
            "trade_id": trade.trade_id,
            "price": self.price(trade.price),
            "qty": self.qty(trade.qty),
            "quote_qty": self.quote(trade.quote_qty),
            "taker_side": trade.taker_side,
            "seq": trade.seq,
            "ts": trade.ts,
        }

    def depth_snapshot(
        self, last_update_id: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]]
    ) -> dict[str, Any]:
        return {
            "type": "snapshot",
            "market": self.market,
            "last_update_id": last_update_id,
            "bids": self.levels(bids),
            "asks": self.levels(asks),
        }

    def depth_update(
        self,
        first_update_id: int,
        last_update_id: int,
        bids: list[tuple[int, int]],
        asks: list[tuple[int, int]],
        ts: int,
    ) -> dict[str, Any]:
        return {
            "type": "update",
            "market": self.market,
            "first_update_id": first_update_id,
            "last_update_id": last_update_id,
            "bids": self.levels(bids),
            "asks": self.levels(asks),
            "ts": ts,
        }

    def kline(self, interval: str, candle: Candle) -> dict[str, Any]:
        return {
            "type": "kline",
            "market": self.market,
            "interval": interval,
            "open_time": candle.open_time,
            "close_time": candle.close_time,
            "open": self.price(candle.open),
            "high": self.price(candle.high),
            "low": self.price(candle.low),
            "close": self.price(candle.close),
            "volume": self.qty(candle.volume),
            "quote_volume": self.quote(candle.quote_volume),
            "count": candle.count,
        }

    # ---- private ------------------------------------------------------------------------

    def order_accepted(self, event: OrderAccepted) -> dict[str, Any]:
        """`new`, or `waiting` for a stop order (until its `triggered` update)."""
        return {
            "type": "order",
            "market": self.market,
            "status": "waiting" if event.stop_price else "new",
            "order_id": event.order_id,
            "client_order_id": event.client_order_id,
            "side": event.side,
            "order_type": event.type,
            "tif": event.tif,
            "price": self.price(event.price),
            "qty": self.qty(event.qty),
            "quote_qty": self.quote(event.quote_qty),
            "stop_price": self.price(event.stop_price) if event.stop_price else None,
            "list_id": event.list_id or None,
            "seq": event.seq,
            "ts": event.ts,
        }

    def order_triggered(self, event: OrderTriggered) -> dict[str, Any]:
        """A stop order's stop price was reached by a trade at `last_price`: it now executes
        (its fills and end follow)."""
        return {
            "type": "order",
            "market": self.market,
            "status": "triggered",
            "order_id": event.order_id,
            "side": event.side,
            "stop_price": self.price(event.stop_price),
            "last_price": self.price(event.last_price),
            "seq": event.seq,
            "ts": event.ts,
        }

    def order_rejected(self, event: OrderRejected) -> dict[str, Any]:
        return {
            "type": "order",
            "market": self.market,
            "status": "rejected",
            "order_id": event.order_id,
            "op": event.op,
            "side": event.side,
            "code": event.code,
            "reason": event.reason,
            "seq": event.seq,
            "ts": event.ts,
        }

    def order_done(self, event: OrderDone) -> dict[str, Any]:
        return {
            "type": "order",
            "market": self.market,
            "status": event.status,
            "reason": event.reason,
            "order_id": event.order_id,
            "side": event.side,
            "filled_qty": self.qty(event.filled_qty),
            "seq": event.seq,
            "ts": event.ts,
        }

    def fill(self, trade: Trade, taker: bool) -> dict[str, Any]:
        """One side's view of a trade. The buyer's fee is in base, the seller's in quote."""
        side = trade.taker_side if taker else (SELL if trade.taker_side == BUY else BUY)
        fee = trade.taker_fee if taker else trade.maker_fee
        return {
            "type": "fill",
            "market": self.market,
            "order_id": trade.taker_order if taker else trade.maker_order,
            "trade_id": trade.trade_id,
            "side": side,
            "role": "taker" if taker else "maker",
            "price": self.price(trade.price),
            "qty": self.qty(trade.qty),
            "quote_qty": self.quote(trade.quote_qty),
            "fee": self.base(fee) if side == BUY else self.quote(fee),
            "fee_asset": self.rules.base if side == BUY else self.rules.quote,
            "seq": trade.seq,
            "ts": trade.ts,
        }
