"""The schema. Amounts are NUMERIC (decimal, exact), times are timestamptz.

Users are identified to the rest of the system by `users.id` as a decimal string: the same
string names their balances in Redis and appears as `user` in engine commands and events.
"""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(Text, unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    is_admin: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = _created()


class ApiKey(Base):
    """An API key for bots: `key` is public, `secret` signs requests (HMAC-SHA256), so the
    server must be able to read it back."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(Text, unique=True)
    secret: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(Text, server_default="")
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime] = _created()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("api_keys_user", "user_id"),)


class MarketRow(Base):
    """Every Market ever provisioned; `deleted_at` is set when it is deleted (history kept)."""

    __tablename__ = "markets"
    name: Mapped[str] = mapped_column(Text, primary_key=True)
    base_asset: Mapped[str] = mapped_column(Text)
    base_scale: Mapped[int] = mapped_column(SmallInteger)
    quote_asset: Mapped[str] = mapped_column(Text)
    quote_scale: Mapped[int] = mapped_column(SmallInteger)
    tick_size: Mapped[Decimal] = mapped_column(Numeric)
    lot_size: Mapped[Decimal] = mapped_column(Numeric)
    spec: Mapped[dict[str, object]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created()
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StoredBatch(Base):
    """One row per stored events-stream entry (an engine batch, keyed by its first seq) or
    funds entry (market '@funds'): inserting it first, ON CONFLICT DO NOTHING, is what makes
    storing a batch idempotent across retries and dbproc replicas."""

    __tablename__ = "stored_batches"
    market: Mapped[str] = mapped_column(Text, primary_key=True)
    first_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    stored_at: Mapped[datetime] = _created()


class EpochRow(Base):
    """Each engine epoch dbproc met (docs/storage.md, "Redis rollback"), as its events-stream
    entries named it (`xch.wire.Epoch`: the previous epoch, the seq and trade id it resumed
    from), and how its events are stored: seq + `seq_offset`, trade id + `trade_offset`.
    `rolled_back` > 0: the history stored went that many events further than the state this
    epoch resumed from (Redis came back older); `number` orders the epochs as recorded."""

    __tablename__ = "epochs"
    market: Mapped[str] = mapped_column(Text, primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    previous: Mapped[int] = mapped_column(BigInteger)
    resumed_seq: Mapped[int] = mapped_column(BigInteger)
    resumed_trade_id: Mapped[int] = mapped_column(BigInteger)
    seq_offset: Mapped[int] = mapped_column(BigInteger)
    trade_offset: Mapped[int] = mapped_column(BigInteger)
    rolled_back: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime] = _created()


class Order(Base):
    """Current state of an order, folded from its events by dbproc. Fills add up, so the
    order of arrival of batches does not matter; `status` follows from the columns: a stop
    order is `waiting` until it triggers (`triggered_at`). The legs of an OCO list share
    `list_id` (and the trader's `client_list_id`)."""

    __tablename__ = "orders"
    market: Mapped[str] = mapped_column(Text, primary_key=True)
    order_id: Mapped[str] = mapped_column(Text, primary_key=True)
    user_id: Mapped[str] = mapped_column(Text)
    client_order_id: Mapped[str | None] = mapped_column(Text)
    side: Mapped[str] = mapped_column(Text)
    type: Mapped[str | None] = mapped_column(Text)
    tif: Mapped[str | None] = mapped_column(Text)
    stp: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal | None] = mapped_column(Numeric)
    qty: Mapped[Decimal | None] = mapped_column(Numeric)
    quote_qty: Mapped[Decimal | None] = mapped_column(Numeric)
    filled_qty: Mapped[Decimal] = mapped_column(Numeric, server_default="0")
    filled_quote: Mapped[Decimal] = mapped_column(Numeric, server_default="0")
    fee: Mapped[Decimal] = mapped_column(Numeric, server_default="0")
    final_status: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stop_price: Mapped[Decimal | None] = mapped_column(Numeric)
    list_id: Mapped[str | None] = mapped_column(Text)
    client_list_id: Mapped[str | None] = mapped_column(Text)
    triggered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(
        Text,
        Computed(
            "CASE WHEN final_status IS NOT NULL THEN final_status"
            " WHEN filled_qty > 0 THEN 'partially_filled'"
            " WHEN stop_price IS NOT NULL AND triggered_at IS NULL THEN 'waiting' ELSE 'new' END",
            persisted=True,
        ),
    )

    __table_args__ = (
        Index("orders_user_time", "user_id", "created_at"),
        Index("orders_open", "user_id", "market", postgresql_where=text("final_status IS NULL")),
        Index(
            "orders_client_id",
            "user_id",
            "client_order_id",
            postgresql_where=text("client_order_id IS NOT NULL"),
        ),
        Index("orders_list", "market", "list_id", postgresql_where=text("list_id IS NOT NULL")),
    )


class OrderEvent(Base):
    """Every state change of every order (accepted, rejected, triggered, done), in engine seq
    order; `last_price` is the trade price that triggered a stop (triggered rows only)."""

    __tablename__ = "order_events"
    market: Mapped[str] = mapped_column(Text, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_id: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    code: Mapped[int] = mapped_column(Integer)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_price: Mapped[Decimal | None] = mapped_column(Numeric)
    moved_asset: Mapped[str | None] = mapped_column(Text)
    moved: Mapped[Decimal | None] = mapped_column(Numeric)
    """The free balance of `moved_asset` this event moved (negative into the order's lock,
    positive out of it): its journal leg (`journal_order_legs`). NULL when it moved none."""

    __table_args__ = (
        Index("order_events_order", "market", "order_id"),
        Index(
            "order_events_user_moves", "user_id", "ts", postgresql_where=text("moved IS NOT NULL")
        ),
    )


class Trade(Base):
    """Fills. On TimescaleDB a hypertable on `ts`, hence `ts` in the primary key. The buyer's
    fee is in the base asset, the seller's in the quote asset."""

    __tablename__ = "trades"
    market: Mapped[str] = mapped_column(Text, primary_key=True)
    trade_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    price: Mapped[Decimal] = mapped_column(Numeric)
    qty: Mapped[Decimal] = mapped_column(Numeric)
    quote_qty: Mapped[Decimal] = mapped_column(Numeric)
    maker_order: Mapped[str] = mapped_column(Text)
    maker_user: Mapped[str] = mapped_column(Text)
    taker_order: Mapped[str] = mapped_column(Text)
    taker_user: Mapped[str] = mapped_column(Text)
    taker_side: Mapped[str] = mapped_column(Text)
    maker_fee: Mapped[Decimal] = mapped_column(Numeric)
    taker_fee: Mapped[Decimal] = mapped_column(Numeric)
    refund: Mapped[Decimal | None] = mapped_column(Numeric)
    """Quote released from a buying taker's lock beyond what it paid (0 when the taker sells),
    the one amount the trade's journal legs (`journal_trade_legs`) need besides the others.
    NULL in trades stored before those legs were derived: theirs are stored rows."""

    __table_args__ = (
        Index("trades_market_time", "market", "ts"),
        Index("trades_maker_user", "maker_user", "ts"),
        Index("trades_taker_user", "taker_user", "ts"),
    )


class Candle1m(Base):
    """One-minute candles of each market, kept by dbproc with the trades (storage.candles);
    the plain-PostgreSQL klines views read them."""

    __tablename__ = "candles_1m"
    market: Mapped[str] = mapped_column(Text, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    open_trade: Mapped[int] = mapped_column(BigInteger)
    open: Mapped[Decimal] = mapped_column(Numeric)
    high: Mapped[Decimal] = mapped_column(Numeric)
    low: Mapped[Decimal] = mapped_column(Numeric)
    close_trade: Mapped[int] = mapped_column(BigInteger)
    close: Mapped[Decimal] = mapped_column(Numeric)
    volume: Mapped[Decimal] = mapped_column(Numeric)
    quote_volume: Mapped[Decimal] = mapped_column(Numeric)
    trades: Mapped[int] = mapped_column(BigInteger)


class JournalEntry(Base):
    """The stored legs of the double-entry ledger journal: deposits and withdrawals, the
    legs of trades and order events stored before they were derived, and those of deleted
    markets. The view `journal` is these and the legs derived from `trades` and
    `order_events` (migration 0004, docs/storage.md): every balance movement, one row per
    event, account and asset, with the event that caused it. The rows of one event sum to
    zero per asset; deposits and withdrawals balance against the account '@external'."""

    __tablename__ = "journal_stored"
    market: Mapped[str] = mapped_column(Text, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    leg: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    ref: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    asset: Mapped[str] = mapped_column(Text)
    free_delta: Mapped[Decimal] = mapped_column(Numeric)
    locked_delta: Mapped[Decimal] = mapped_column(Numeric)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("journal_stored_user_time", "user_id", "ts"),)


class Transfer(Base):
    """Deposits (positive amount) and withdrawals (negative), from the funds stream."""

    __tablename__ = "transfers"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[str] = mapped_column(Text)
    asset: Mapped[str] = mapped_column(Text)
    amount: Mapped[Decimal] = mapped_column(Numeric)
    reference: Mapped[str] = mapped_column(Text)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("transfers_user_time", "user_id", "ts"),)
