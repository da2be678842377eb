"""Engine events and funds movements as rows of the storage tables (no I/O).

A market's events stay integers (ticks, lots, minor units, Unix ms): PostgreSQL scales them
into exact NUMERICs as it derives the stored rows (dbproc/writer.py). An order's row is folded
from the events of one read (`OrderFold`); the writer adds folds up in SQL, so the order in
which replicas store batches does not matter. Funds movements become rows here, as Decimals.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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
    "maker_user", "taker_order", "taker_user", "taker_side", "maker_fee", "taker_fee", "refund",
)  # fmt: skip
ORDER_EVENT_COLUMNS = (
    "market", "seq", "order_id", "user_id", "kind", "status", "reason", "code", "ts", "last_price",
    "moved_asset", "moved",
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

    market: Market
    rules: MarketRules
    tick: Decimal
    lot: Decimal
    base_unit: Decimal
    quote_unit: Decimal

    @classmethod
    def of(cls, market: Market) -> "Units":
        spec = market.spec
        return cls(
            market=market,
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


@dataclass
class OrderFold:
    """What one read of events says about one order: its description (from its
    acceptance or refusal), its trigger, and fills, fees and end to add to what is stored.
    Integers as the engine reports them (ticks, lots, minor units, Unix ms); None for what
    this read does not say (fills: none yet, stored as 0)."""

    user_id: str
    side: str
    updated_at: int
    client_order_id: str | None = None
    type: str | None = None
    tif: str | None = None
    stp: str | None = None
    price: int | None = None
    qty: int | None = None
    quote_qty: int | None = None
    filled_qty: int | None = None
    filled_quote: int | None = None
    base_fee: int | None = None
    """Fees paid as a buyer, in base; as a seller, in quote (an order id is one side, but
    the fold does not rely on it)."""
    quote_fee: int | None = None
    final_status: str | None = None
    reason: str | None = None
    created_at: int | None = None
    stop_price: int | None = None
    list_id: str | None = None
    client_list_id: str | None = None
    triggered_at: int | None = None


TRADE_FIELDS = (
    "trade_id", "ms", "seq", "price", "qty", "quote_qty", "maker_order", "maker_user",
    "taker_order", "taker_user", "taker_side", "maker_fee", "taker_fee", "taker_unlocked",
)  # fmt: skip
"""A trade as the writer sends it (`MarketRows.trades`): the event's integers."""
ORDER_EVENT_FIELDS = (
    "seq", "order_id", "user_id", "kind", "status", "reason", "code", "ms", "last_price", "side",
    "moved",
)  # fmt: skip
"""An order event as the writer sends it: `moved` is the free balance it moves (minus the
lock an acceptance takes, plus what an end unlocks), the one journal leg it has if not 0."""


@dataclass
class MarketRows:
    """What one read of a market's events adds, as integers: PostgreSQL derives the rows of
    trades, candles, order events and journal from them (dbproc/writer.py)."""

    trades: list[Row] = field(default_factory=list)
    order_events: list[Row] = field(default_factory=list)
    orders: dict[str, OrderFold] = field(default_factory=dict)


def market_rows(events: Iterable[Event]) -> MarketRows:
    rows = MarketRows()
    for event in events:
        add = _ADDERS.get(type(event))
        if add is not None:
            add(rows, event)
    return rows


def _fold(rows: MarketRows, order_id: str, user: str, side: str, ms: int) -> OrderFold:
    fold = rows.orders.get(order_id)
    if fold is None:
        fold = rows.orders[order_id] = OrderFold(user_id=user, side=side, updated_at=ms)
    elif ms > fold.updated_at:
        fold.updated_at = ms
    return fold


def _add_trade(rows: MarketRows, trade: Trade) -> None:
    rows.trades.append(
        (
            trade.trade_id, trade.ts, trade.seq, trade.price, trade.qty, trade.quote_qty,
            trade.maker_order, trade.maker_user, trade.taker_order, trade.taker_user,
            trade.taker_side, trade.maker_fee, trade.taker_fee, trade.taker_unlocked,
        )
    )  # fmt: skip
    taker_buys = trade.taker_side == BUY
    maker_side = "sell" if taker_buys else BUY
    for order_id, user, side, fee in (
        (trade.maker_order, trade.maker_user, maker_side, trade.maker_fee),
        (trade.taker_order, trade.taker_user, trade.taker_side, trade.taker_fee),
    ):
        fold = _fold(rows, order_id, user, side, trade.ts)
        fold.filled_qty = (fold.filled_qty or 0) + trade.qty
        fold.filled_quote = (fold.filled_quote or 0) + trade.quote_qty
        if side == BUY:
            fold.base_fee = (fold.base_fee or 0) + fee
        else:
            fold.quote_fee = (fold.quote_fee or 0) + fee


def _order_event(
    rows: MarketRows,
    event: OrderAccepted | OrderRejected | OrderTriggered | OrderDone,
    kind: str,
    status: str,
    reason: str = "",
    code: int = 0,
    last_price: int | None = None,
    moved: int = 0,
) -> None:
    rows.order_events.append(
        (
            event.seq, event.order_id, event.user, kind, status, reason, code, event.ts,
            last_price, event.side, moved,
        )
    )  # fmt: skip


def _add_accepted(rows: MarketRows, event: OrderAccepted) -> None:
    _order_event(rows, event, "order_accepted", "new", moved=-event.locked)
    fold = _fold(rows, event.order_id, event.user, event.side, event.ts)
    fold.client_order_id = event.client_order_id or None
    fold.type, fold.tif, fold.stp = event.type, event.tif, event.stp
    fold.price = event.price or None
    fold.qty = event.qty or None
    fold.quote_qty = event.quote_qty or None
    fold.stop_price = event.stop_price or None
    fold.list_id = event.list_id or None
    fold.client_list_id = event.client_list_id or None
    fold.created_at = event.ts


def _add_triggered(rows: MarketRows, event: OrderTriggered) -> None:
    _order_event(rows, event, "order_triggered", TRIGGERED, last_price=event.last_price)
    _fold(rows, event.order_id, event.user, event.side, event.ts).triggered_at = event.ts


def _add_rejected(rows: MarketRows, event: OrderRejected) -> None:
    # A refused place's lock and unlock cancel out: it moves nothing.
    _order_event(rows, event, "order_rejected", "rejected", event.reason, event.code)
    # A place refused as a duplicate names someone else's order: it leaves that one alone.
    if event.op in PLACING_OPS and event.code != ResultCode.DUPLICATE_ORDER:
        fold = _fold(rows, event.order_id, event.user, event.side, event.ts)
        fold.final_status, fold.reason = "rejected", event.reason
        fold.created_at = fold.created_at or event.ts


def _add_done(rows: MarketRows, event: OrderDone) -> None:
    _order_event(rows, event, "order_done", event.status, event.reason, moved=event.unlocked)
    fold = _fold(rows, event.order_id, event.user, event.side, event.ts)
    fold.final_status, fold.reason = event.status, event.reason


_ADDERS: dict[type, Callable[[MarketRows, Any], None]] = {
    Trade: _add_trade,
    OrderAccepted: _add_accepted,
    OrderRejected: _add_rejected,
    OrderTriggered: _add_triggered,
    OrderDone: _add_done,
}


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
