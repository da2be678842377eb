"""Engine events and funds movements as rows of the storage tables (no I/O).

Integers (ticks, lots, minor units) become exact Decimals for NUMERIC columns. An order's
row is folded from the events of one read (`OrderFold`); the writer adds folds up in SQL, so
the order in which replicas store batches does not matter.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Context, Decimal
from typing import Any

from ledger.reference import balance_moves
from storage.klines import utc_from_ms
from xch.market import Market, MarketRules
from xch.money import minor_unit
from xch.schemas import (
    BUY,
    Event,
    Funds,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderTriggered,
    ResultCode,
    Trade,
)

EXACT = Context(prec=100)
FUNDS_MARKET = "@funds"
"""The `market` under which funds movements are journaled and deduplicated."""

TRADE_COLUMNS = (
    "market", "trade_id", "ts", "seq", "price", "qty", "quote_qty", "maker_order",
    "maker_user", "taker_order", "taker_user", "taker_side", "maker_fee", "taker_fee",
)  # fmt: skip
ORDER_EVENT_COLUMNS = (
    "market", "seq", "order_id", "user_id", "kind", "status", "reason", "code", "ts", "last_price",
)  # fmt: skip
TRIGGERED = "triggered"
"""The `order_events` status of a stop order's trigger."""
PLACING_OPS = ("place", "place_list")
"""The refused commands that name an order of their own (an OCO list: one per leg)."""
JOURNAL_COLUMNS = (
    "market", "seq", "leg", "kind", "ref", "user_id", "asset", "free_delta", "locked_delta", "ts",
)  # fmt: skip
TRANSFER_COLUMNS = ("seq", "user_id", "asset", "amount", "reference", "ts")

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Units:
    """How one market's integers read as decimals."""

    rules: MarketRules
    tick: Decimal
    lot: Decimal
    base_unit: Decimal
    quote_unit: Decimal

    @classmethod
    def of(cls, market: Market) -> "Units":
        spec = market.spec
        return cls(
            rules=market.rules(),
            tick=Decimal(spec.tick_size),
            lot=Decimal(spec.lot_size),
            base_unit=minor_unit(spec.base.scale),
            quote_unit=minor_unit(spec.quote.scale),
        )

    def price(self, ticks: int) -> Decimal:
        return EXACT.multiply(ticks, self.tick)

    def qty(self, lots: int) -> Decimal:
        return EXACT.multiply(lots, self.lot)

    def quote(self, minor: int) -> Decimal:
        return EXACT.multiply(minor, self.quote_unit)

    def base(self, minor: int) -> Decimal:
        return EXACT.multiply(minor, self.base_unit)

    def minor(self, asset: str, amount: int) -> Decimal:
        return self.base(amount) if asset == self.rules.base else self.quote(amount)

    def spent(self, side: str, amount: int) -> Decimal:
        """An amount of the asset an order on `side` spends (quote for a buy)."""
        return self.quote(amount) if side == BUY else self.base(amount)


@dataclass
class OrderFold:
    """What one read of events says about one order: its description (from its
    acceptance or refusal), its trigger, and fills, fees and end to add to what is stored."""

    user_id: str
    side: str
    updated_at: datetime
    client_order_id: str | None = None
    type: str | None = None
    tif: str | None = None
    stp: str | None = None
    price: Decimal | None = None
    qty: Decimal | None = None
    quote_qty: Decimal | None = None
    filled_qty: Decimal = Decimal(0)
    filled_quote: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    final_status: str | None = None
    reason: str | None = None
    created_at: datetime | None = None
    stop_price: Decimal | None = None
    list_id: str | None = None
    client_list_id: str | None = None
    triggered_at: datetime | None = None


@dataclass
class MarketRows:
    """The rows one read of a market's events adds."""

    trades: list[Row] = field(default_factory=list)
    order_events: list[Row] = field(default_factory=list)
    journal: list[Row] = field(default_factory=list)
    orders: dict[str, OrderFold] = field(default_factory=dict)


def market_rows(units: Units, events: Iterable[Event]) -> MarketRows:
    rows = MarketRows()
    last_ms, ts = 0, utc_from_ms(0)
    for event in events:
        # The events of one command share its timestamp: convert it once.
        if event.ts != last_ms:
            last_ms, ts = event.ts, utc_from_ms(event.ts)
        if isinstance(event, Trade):
            _add_trade(rows, units, event, ts)
        elif isinstance(event, OrderAccepted):
            _add_accepted(rows, units, event, ts)
        elif isinstance(event, OrderRejected):
            _add_rejected(rows, event, ts)
        elif isinstance(event, OrderTriggered):
            _add_triggered(rows, units, event, ts)
        elif isinstance(event, OrderDone):
            _add_done(rows, event, ts)
        else:
            continue
        _add_journal(rows, units, event, ts)
    return rows


def _fold(rows: MarketRows, order_id: str, user: str, side: str, ts: datetime) -> OrderFold:
    fold = rows.orders.get(order_id)
    if fold is None:
        fold = rows.orders[order_id] = OrderFold(user_id=user, side=side, updated_at=ts)
    fold.updated_at = max(fold.updated_at, ts)
    return fold


def _add_trade(rows: MarketRows, units: Units, trade: Trade, ts: datetime) -> None:
    taker_buys = trade.taker_side == BUY
    # The buyer's fee is in base minor units, the seller's in quote minor units.
    maker_fee = units.quote(trade.maker_fee) if taker_buys else units.base(trade.maker_fee)
    taker_fee = units.base(trade.taker_fee) if taker_buys else units.quote(trade.taker_fee)
    qty, quote_qty = units.qty(trade.qty), units.quote(trade.quote_qty)
    rows.trades.append(
        (
            trade.market,
            trade.trade_id,
            ts,
            trade.seq,
            units.price(trade.price),
            qty,
            quote_qty,
            trade.maker_order,
            trade.maker_user,
            trade.taker_order,
            trade.taker_user,
            trade.taker_side,
            maker_fee,
            taker_fee,
        )
    )
    maker_side = "sell" if taker_buys else BUY
    for order_id, user, side, fee in (
        (trade.maker_order, trade.maker_user, maker_side, maker_fee),
        (trade.taker_order, trade.taker_user, trade.taker_side, taker_fee),
    ):
        fold = _fold(rows, order_id, user, side, ts)
        fold.filled_qty += qty
        fold.filled_quote += quote_qty
        fold.fee += fee


def _order_event(
    rows: MarketRows,
    event: OrderAccepted | OrderRejected | OrderTriggered | OrderDone,
    status: str,
    ts: datetime,
    reason: str = "",
    code: int = 0,
    last_price: Decimal | None = None,
) -> None:
    rows.order_events.append(
        (
            event.market,
            event.seq,
            event.order_id,
            event.user,
            kind_of(event),
            status,
            reason,
            code,
            ts,
            last_price,
        )
    )


def _add_accepted(rows: MarketRows, units: Units, event: OrderAccepted, ts: datetime) -> None:
    _order_event(rows, event, "new", ts)
    fold = _fold(rows, event.order_id, event.user, event.side, ts)
    fold.client_order_id = event.client_order_id or None
    fold.type, fold.tif, fold.stp = event.type, event.tif, event.stp
    fold.price = units.price(event.price) if event.price else None
    fold.qty = units.qty(event.qty) if event.qty else None
    fold.quote_qty = units.quote(event.quote_qty) if event.quote_qty else None
    fold.stop_price = units.price(event.stop_price) if event.stop_price else None
    fold.list_id = event.list_id or None
    fold.client_list_id = event.client_list_id or None
    fold.created_at = ts


def _add_triggered(rows: MarketRows, units: Units, event: OrderTriggered, ts: datetime) -> None:
    _order_event(rows, event, TRIGGERED, ts, last_price=units.price(event.last_price))
    _fold(rows, event.order_id, event.user, event.side, ts).triggered_at = ts


def _add_rejected(rows: MarketRows, event: OrderRejected, ts: datetime) -> None:
    _order_event(rows, event, "rejected", ts, event.reason, event.code)
    # A place refused as a duplicate names someone else's order: it leaves that one alone.
    if event.op in PLACING_OPS and event.code != ResultCode.DUPLICATE_ORDER:
        fold = _fold(rows, event.order_id, event.user, event.side, ts)
        fold.final_status, fold.reason = "rejected", event.reason
        fold.created_at = fold.created_at or ts


def _add_done(rows: MarketRows, event: OrderDone, ts: datetime) -> None:
    _order_event(rows, event, event.status, ts, event.reason)
    fold = _fold(rows, event.order_id, event.user, event.side, ts)
    fold.final_status, fold.reason = event.status, event.reason


def kind_of(event: Event) -> str:
    """The event's `kind` tag, as encoded on the wire."""
    return str(type(event).__struct_config__.tag)


def _reference(event: Event) -> str:
    if isinstance(event, Trade):
        return str(event.trade_id)
    return getattr(event, "order_id", "")


def _add_journal(rows: MarketRows, units: Units, event: Event, ts: datetime) -> None:
    ref = _reference(event)
    for leg, move in enumerate(balance_moves(event, units.rules)):
        rows.journal.append(
            (
                event.market,
                event.seq,
                leg,
                kind_of(event),
                ref,
                move.user,
                move.asset,
                units.minor(move.asset, move.free),
                units.minor(move.asset, move.locked),
                ts,
            )
        )


@dataclass
class FundsRows:
    transfers: list[Row] = field(default_factory=list)
    journal: list[Row] = field(default_factory=list)


def funds_rows(movements: Iterable[tuple[Funds, str, Decimal]]) -> FundsRows:
    """Rows for funds movements, each with its reference and its asset's minor unit."""
    rows = FundsRows()
    for event, reference, unit in movements:
        ts = utc_from_ms(event.ts)
        rows.transfers.append(
            (event.seq, event.user, event.asset, EXACT.multiply(event.amount, unit), reference, ts)
        )
        kind = "deposit" if event.amount > 0 else "withdrawal"
        for leg, move in enumerate(balance_moves(event, None)):
            rows.journal.append(
                (
                    FUNDS_MARKET,
                    event.seq,
                    leg,
                    kind,
                    reference,
                    move.user,
                    move.asset,
                    EXACT.multiply(move.free, unit),
                    Decimal(0),
                    ts,
                )
            )
    return rows
