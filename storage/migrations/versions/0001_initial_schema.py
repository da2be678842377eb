"""Initial schema; `trades` becomes a hypertable where TimescaleDB is available.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 03:40:06.474326
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A plain table on PostgreSQL without the extension; the klines relations differ accordingly
# (storage.klines), their readers do not.
TRADES_HYPERTABLE = """
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
    CREATE EXTENSION IF NOT EXISTS timescaledb;
    PERFORM create_hypertable(
      'trades', 'ts', chunk_time_interval => INTERVAL '1 day', if_not_exists => TRUE
    );
  END IF;
END $$
"""


def upgrade() -> None:
    op.create_table(
        "journal",
        sa.Column("market", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("leg", sa.SmallInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("asset", sa.Text(), nullable=False),
        sa.Column("free_delta", sa.Numeric(), nullable=False),
        sa.Column("locked_delta", sa.Numeric(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("market", "seq", "leg"),
    )
    op.create_index("journal_user_time", "journal", ["user_id", "ts"], unique=False)
    op.create_table(
        "markets",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("base_asset", sa.Text(), nullable=False),
        sa.Column("base_scale", sa.SmallInteger(), nullable=False),
        sa.Column("quote_asset", sa.Text(), nullable=False),
        sa.Column("quote_scale", sa.SmallInteger(), nullable=False),
        sa.Column("tick_size", sa.Numeric(), nullable=False),
        sa.Column("lot_size", sa.Numeric(), nullable=False),
        sa.Column("spec", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "order_events",
        sa.Column("market", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("market", "seq"),
    )
    op.create_index("order_events_order", "order_events", ["market", "order_id"], unique=False)
    op.create_table(
        "orders",
        sa.Column("market", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("client_order_id", sa.Text(), nullable=True),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=True),
        sa.Column("tif", sa.Text(), nullable=True),
        sa.Column("stp", sa.Text(), nullable=True),
        sa.Column("price", sa.Numeric(), nullable=True),
        sa.Column("qty", sa.Numeric(), nullable=True),
        sa.Column("quote_qty", sa.Numeric(), nullable=True),
        sa.Column("filled_qty", sa.Numeric(), server_default="0", nullable=False),
        sa.Column("filled_quote", sa.Numeric(), server_default="0", nullable=False),
        sa.Column("fee", sa.Numeric(), server_default="0", nullable=False),
        sa.Column("final_status", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Text(),
            sa.Computed(
                "CASE WHEN final_status IS NOT NULL THEN final_status"
                " WHEN filled_qty > 0 THEN 'partially_filled' ELSE 'new' END",
                persisted=True,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("market", "order_id"),
    )
    op.create_index(
        "orders_client_id",
        "orders",
        ["user_id", "client_order_id"],
        unique=False,
        postgresql_where=sa.text("client_order_id IS NOT NULL"),
    )
    op.create_index(
        "orders_open",
        "orders",
        ["user_id", "market"],
        unique=False,
        postgresql_where=sa.text("final_status IS NULL"),
    )
    op.create_index("orders_user_time", "orders", ["user_id", "created_at"], unique=False)
    op.create_table(
        "stored_batches",
        sa.Column("market", sa.Text(), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column(
            "stored_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("market", "first_seq"),
    )
    op.create_table(
        "trades",
        sa.Column("market", sa.Text(), nullable=False),
        sa.Column("trade_id", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.Numeric(), nullable=False),
        sa.Column("qty", sa.Numeric(), nullable=False),
        sa.Column("quote_qty", sa.Numeric(), nullable=False),
        sa.Column("maker_order", sa.Text(), nullable=False),
        sa.Column("maker_user", sa.Text(), nullable=False),
        sa.Column("taker_order", sa.Text(), nullable=False),
        sa.Column("taker_user", sa.Text(), nullable=False),
        sa.Column("taker_side", sa.Text(), nullable=False),
        sa.Column("maker_fee", sa.Numeric(), nullable=False),
        sa.Column("taker_fee", sa.Numeric(), nullable=False),
        sa.PrimaryKeyConstraint("market", "trade_id", "ts"),
    )
    op.create_index("trades_maker_user", "trades", ["maker_user", "ts"], unique=False)
    op.create_index("trades_market_time", "trades", ["market", "ts"], unique=False)
    op.create_index("trades_taker_user", "trades", ["taker_user", "ts"], unique=False)
    op.create_table(
        "transfers",
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("asset", sa.Text(), nullable=False),
        sa.Column("amount", sa.Numeric(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("transfers_user_time", "transfers", ["user_id", "ts"], unique=False)
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), server_default="", nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index("api_keys_user", "api_keys", ["user_id"], unique=False)
    op.execute(TRADES_HYPERTABLE)


def downgrade() -> None:
    op.drop_index("api_keys_user", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_table("users")
    op.drop_index("transfers_user_time", table_name="transfers")
    op.drop_table("transfers")
    op.drop_index("trades_taker_user", table_name="trades")
    op.drop_index("trades_market_time", table_name="trades")
    op.drop_index("trades_maker_user", table_name="trades")
    op.drop_table("trades")
    op.drop_table("stored_batches")
    op.drop_index("orders_user_time", table_name="orders")
    op.drop_index(
        "orders_open", table_name="orders", postgresql_where=sa.text("final_status IS NULL")
    )
    op.drop_index(
        "orders_client_id",
        table_name="orders",
        postgresql_where=sa.text("client_order_id IS NOT NULL"),
    )
    op.drop_table("orders")
    op.drop_index("order_events_order", table_name="order_events")
    op.drop_table("order_events")
    op.drop_table("markets")
    op.drop_index("journal_user_time", table_name="journal")
    op.drop_table("journal")
