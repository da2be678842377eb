"""Engine epochs: how dbproc stores the history of a market whose Redis came back older
(docs/storage.md, "Redis rollback"). Existing rows are epoch 0, offsets 0: unchanged.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "epochs",
        sa.Column("market", sa.Text(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("previous", sa.BigInteger(), nullable=False),
        sa.Column("resumed_seq", sa.BigInteger(), nullable=False),
        sa.Column("resumed_trade_id", sa.BigInteger(), nullable=False),
        sa.Column("seq_offset", sa.BigInteger(), nullable=False),
        sa.Column("trade_offset", sa.BigInteger(), nullable=False),
        sa.Column("rolled_back", sa.BigInteger(), nullable=False),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("market", "epoch"),
        sa.UniqueConstraint("number"),
    )


def downgrade() -> None:
    op.drop_table("epochs")
