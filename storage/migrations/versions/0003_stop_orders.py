"""Stop orders and OCO lists: an order's stop price, list and trigger time; `waiting` status.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# PostgreSQL before 17 cannot change a generated column's expression: it is dropped and
# added again (which recomputes it for every row).
STATUS_BEFORE = (
    "CASE WHEN final_status IS NOT NULL THEN final_status"
    " WHEN filled_qty > 0 THEN 'partially_filled' ELSE 'new' END"
)
STATUS = (
    "CASE WHEN final_status IS NOT NULL THEN final_status"
    " WHEN filled_qty > 0 THEN 'partially_filled'"
    " WHEN stop_price IS NOT NULL AND triggered_at IS NULL THEN 'waiting' ELSE 'new' END"
)


def _status(expression: str) -> None:
    op.drop_column("orders", "status")
    op.add_column(
        "orders",
        sa.Column("status", sa.Text(), sa.Computed(expression, persisted=True), nullable=False),
    )


def upgrade() -> None:
    op.add_column("orders", sa.Column("stop_price", sa.Numeric(), nullable=True))
    op.add_column("orders", sa.Column("list_id", sa.Text(), nullable=True))
    op.add_column("orders", sa.Column("client_list_id", sa.Text(), nullable=True))
    op.add_column("orders", sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=True))
    _status(STATUS)
    op.create_index(
        "orders_list",
        "orders",
        ["market", "list_id"],
        unique=False,
        postgresql_where=sa.text("list_id IS NOT NULL"),
    )
    op.add_column("order_events", sa.Column("last_price", sa.Numeric(), nullable=True))


def downgrade() -> None:
    op.drop_column("order_events", "last_price")
    op.drop_index(
        "orders_list", table_name="orders", postgresql_where=sa.text("list_id IS NOT NULL")
    )
    _status(STATUS_BEFORE)
    op.drop_column("orders", "triggered_at")
    op.drop_column("orders", "client_list_id")
    op.drop_column("orders", "list_id")
    op.drop_column("orders", "stop_price")
