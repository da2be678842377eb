"""Stored one-minute candles (`candles_1m`), filled from the trades already stored.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BACKFILL = """
INSERT INTO candles_1m
SELECT market, date_bin(INTERVAL '1 minute', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket,
  min(trade_id), (array_agg(price ORDER BY trade_id))[1], max(price), min(price),
  max(trade_id), (array_agg(price ORDER BY trade_id DESC))[1],
  sum(qty), sum(quote_qty), count(*)
FROM trades GROUP BY market, date_bin(INTERVAL '1 minute', ts, TIMESTAMPTZ '2000-01-03 00:00:00+00')
"""


def upgrade() -> None:
    op.create_table(
        "candles_1m",
        sa.Column("market", sa.Text(), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("open_trade", sa.BigInteger(), nullable=False),
        sa.Column("open", sa.Numeric(), nullable=False),
        sa.Column("high", sa.Numeric(), nullable=False),
        sa.Column("low", sa.Numeric(), nullable=False),
        sa.Column("close_trade", sa.BigInteger(), nullable=False),
        sa.Column("close", sa.Numeric(), nullable=False),
        sa.Column("volume", sa.Numeric(), nullable=False),
        sa.Column("quote_volume", sa.Numeric(), nullable=False),
        sa.Column("trades", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("market", "bucket"),
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_table("candles_1m")
