"""The journal's trade and lock legs derived from the rows that caused them.

`journal` becomes a view: the stored legs (`journal_stored`: deposits and withdrawals, legs
stored before this revision, and those of deleted markets) together with the legs each trade
and each order event imply, computed from their own row. A trade keeps the one amount its legs
need that it did not have (`refund`), an order event the lock it moved (`moved`,
`moved_asset`). NULL in rows stored before this revision: their legs are stored rows.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOURNAL_COLUMNS = "market, seq, leg, kind, ref, user_id, asset, free_delta, locked_delta, ts"
FEE_ACCOUNT = "@fees"  # xch.schemas.FEE_ACCOUNT, as this revision made it

# A trade's cells, as ledger.reference._trade_moves makes them: the buyer's quote and base,
# the seller's base and quote, the fees account's base and quote; a self-trade's buyer and
# seller cells are one (the seller's left at 0). Numbered in that order, skipping the cells
# that move nothing; each amount at its asset's scale, as the writer stored them.
_TRADE_CELLS = """
FROM trades t JOIN markets m ON m.name = t.market
CROSS JOIN LATERAL (SELECT t.taker_side = 'buy' AS taker_buys, t.maker_user = t.taker_user AS own,
  CASE WHEN t.taker_side = 'buy' THEN t.taker_fee ELSE t.maker_fee END AS buyer_fee,
  CASE WHEN t.taker_side = 'buy' THEN t.maker_fee ELSE t.taker_fee END AS seller_fee) r
CROSS JOIN LATERAL (SELECT
  t.refund + CASE WHEN r.own THEN t.quote_qty - r.seller_fee ELSE 0 END AS f1,
  -(t.quote_qty + t.refund) AS l1, t.qty - r.buyer_fee AS f2,
  CASE WHEN r.own THEN -t.qty ELSE 0 END AS l2, CASE WHEN r.own THEN 0 ELSE -t.qty END AS l3,
  CASE WHEN r.own THEN 0 ELSE t.quote_qty - r.seller_fee END AS f4) v
CROSS JOIN LATERAL (SELECT (v.f1 <> 0 OR v.l1 <> 0)::int AS n1, (v.f2 <> 0 OR v.l2 <> 0)::int AS n2,
  (v.l3 <> 0)::int AS n3, (v.f4 <> 0)::int AS n4, (r.buyer_fee <> 0)::int AS n5) n
CROSS JOIN LATERAL (VALUES
  (0, 'buyer', m.quote_asset, m.quote_scale, v.f1, v.l1),
  (n.n1, 'buyer', m.base_asset, m.base_scale, v.f2, v.l2),
  (n.n1 + n.n2, 'seller', m.base_asset, m.base_scale, 0, v.l3),
  (n.n1 + n.n2 + n.n3, 'seller', m.quote_asset, m.quote_scale, v.f4, 0),
  (n.n1 + n.n2 + n.n3 + n.n4, 'fees', m.base_asset, m.base_scale, r.buyer_fee, 0),
  (n.n1 + n.n2 + n.n3 + n.n4 + n.n5, 'fees', m.quote_asset, m.quote_scale, r.seller_fee, 0)
) AS c(leg, role, asset, scale, free, locked)
WHERE t.refund IS NOT NULL AND (c.free <> 0 OR c.locked <> 0)"""


def _trade_legs(user: str, cells: str) -> str:
    """One account's legs of every trade: the account is a plain column (or a constant) in
    each branch, so that a read of one user's journal uses the trades' indexes on users."""
    return (
        f"SELECT t.market, t.seq, c.leg::smallint, 'trade'::text, t.trade_id::text, {user}, "
        "c.asset, round(c.free, c.scale), round(c.locked, c.scale), t.ts"
        f"{_TRADE_CELLS} AND ({cells})"
    )


TRADE_LEGS = " UNION ALL ".join(
    (
        _trade_legs(
            "t.taker_user",
            "c.role = 'buyer' AND (r.taker_buys OR r.own)"
            " OR c.role = 'seller' AND (NOT r.taker_buys OR r.own)",
        ),
        _trade_legs(
            "t.maker_user",
            "NOT r.own AND (c.role = 'buyer' AND NOT r.taker_buys"
            " OR c.role = 'seller' AND r.taker_buys)",
        ),
        _trade_legs(f"'{FEE_ACCOUNT}'::text", "c.role = 'fees'"),
    )
)
ORDER_LEGS = (
    "SELECT market, seq, 0::smallint, kind, order_id, user_id, moved_asset, moved, -moved, ts "
    "FROM order_events WHERE moved IS NOT NULL"
)
JOURNAL = (
    f"SELECT {JOURNAL_COLUMNS} FROM journal_stored UNION ALL "
    f"SELECT {JOURNAL_COLUMNS} FROM journal_trade_legs UNION ALL "
    f"SELECT {JOURNAL_COLUMNS} FROM journal_order_legs"
)


def _create_views() -> None:
    op.execute(f"CREATE VIEW journal_trade_legs ({JOURNAL_COLUMNS}) AS {TRADE_LEGS}")
    op.execute(f"CREATE VIEW journal_order_legs ({JOURNAL_COLUMNS}) AS {ORDER_LEGS}")
    op.execute(f"CREATE VIEW journal AS {JOURNAL}")


def upgrade() -> None:
    op.rename_table("journal", "journal_stored")
    op.execute("ALTER INDEX journal_pkey RENAME TO journal_stored_pkey")
    op.execute("ALTER INDEX journal_user_time RENAME TO journal_stored_user_time")
    op.add_column("trades", sa.Column("refund", sa.Numeric(), nullable=True))
    op.add_column("order_events", sa.Column("moved_asset", sa.Text(), nullable=True))
    op.add_column("order_events", sa.Column("moved", sa.Numeric(), nullable=True))
    op.create_index(
        "order_events_user_moves",
        "order_events",
        ["user_id", "ts"],
        unique=False,
        postgresql_where=sa.text("moved IS NOT NULL"),
    )
    _create_views()


def downgrade() -> None:
    """The derived legs become stored rows again."""
    op.execute("DROP VIEW journal")
    for view in ("journal_trade_legs", "journal_order_legs"):
        op.execute(f"INSERT INTO journal_stored SELECT * FROM {view}")
        op.execute(f"DROP VIEW {view}")
    op.drop_index(
        "order_events_user_moves",
        table_name="order_events",
        postgresql_where=sa.text("moved IS NOT NULL"),
    )
    op.drop_column("order_events", "moved")
    op.drop_column("order_events", "moved_asset")
    op.drop_column("trades", "refund")
    op.execute("ALTER INDEX journal_stored_user_time RENAME TO journal_user_time")
    op.execute("ALTER INDEX journal_stored_pkey RENAME TO journal_pkey")
    op.rename_table("journal_stored", "journal")
