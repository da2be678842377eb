"""Reads behind the portfolio (xch.portfolio does the arithmetic): a user's fills folded into
positions per market, and the user's balance moves per time bucket from the journal.

Amounts leave PostgreSQL as integer minor units: each asset's scale is in `markets`.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg

from storage.klines import ORIGIN
from xch.money import format_decimal
from xch.portfolio import Fill, MarketInfo, Position

_FILLS = """
WITH f AS (
    SELECT market, trade_id, 0 AS role,
           CASE taker_side WHEN 'buy' THEN 'sell' ELSE 'buy' END AS side,
           qty, quote_qty, maker_fee AS fee
      FROM trades WHERE maker_user = $1 AND ($2::text IS NULL OR market = $2)
    UNION ALL
    SELECT market, trade_id, 1, taker_side, qty, quote_qty, taker_fee
      FROM trades WHERE taker_user = $1 AND ($2::text IS NULL OR market = $2)
)
SELECT f.market, f.trade_id, f.side,
       (f.qty * (10::numeric ^ m.base_scale))::bigint AS qty,
       (f.quote_qty * (10::numeric ^ m.quote_scale))::bigint AS quote,
       (f.fee * (10::numeric ^ CASE f.side WHEN 'buy' THEN m.base_scale
                                            ELSE m.quote_scale END))::bigint AS fee
  FROM f JOIN markets m ON m.name = f.market
 ORDER BY f.market, f.trade_id, f.role
"""
"""A self-trade is two fills of the same user (maker then taker): both are folded."""


async def markets(db: asyncpg.Pool | asyncpg.Connection) -> dict[str, MarketInfo]:
    """Every market ever provisioned (a deleted one's fills still count)."""
    rows = await db.fetch(
        "SELECT name, base_asset, quote_asset, base_scale, quote_scale FROM markets"
    )
    return {
        row["name"]: MarketInfo(
            row["name"],
            row["base_asset"],
            row["quote_asset"],
            row["base_scale"],
            row["quote_scale"],
        )
        for row in rows
    }


async def positions(
    db: asyncpg.Pool | asyncpg.Connection, user: str, market: str | None = None
) -> dict[str, Position]:
    """The user's fills folded per market, in trade order."""
    out: dict[str, Position] = {}
    for row in await db.fetch(_FILLS, user, market):
        position = out.setdefault(row["market"], Position())
        position.apply(Fill(row["trade_id"], row["side"], row["qty"], row["quote"], row["fee"]))
    return out


@dataclass(frozen=True, slots=True)
class Moves:
    """A user's journal between two times: the balances (free + locked) when it opens, and
    per bucket start the change of each asset as (all moves, deposits and withdrawals)."""

    opening: dict[str, int]
    buckets: dict[datetime, dict[str, tuple[int, int]]]


def _minor(amount: Decimal, scale: int) -> int:
    scaled = amount.scaleb(scale)
    units = int(scaled)
    if units != scaled:
        raise ValueError(f"{amount} has more than {scale} decimals")
    return units


async def moves(
    db: asyncpg.Pool | asyncpg.Connection,
    user: str,
    seconds: int,
    start: datetime,
    end: datetime,
    scales: dict[str, int],
) -> Moves:
    """The user's balance moves in [start, end) per bucket of `seconds` (buckets aligned as
    the klines' are); assets without a scale in `scales` are left out."""
    opening_rows = await db.fetch(
        "SELECT asset, sum(free_delta + locked_delta) AS amount FROM journal"
        " WHERE user_id = $1 AND ts < $2 GROUP BY asset",
        user,
        start,
    )
    bucket_rows = await db.fetch(
        f"SELECT date_bin(make_interval(secs => $2), ts, {ORIGIN}) AS bucket, asset,"
        " sum(free_delta + locked_delta) AS amount,"
        " sum(CASE WHEN kind IN ('deposit', 'withdrawal') THEN free_delta + locked_delta"
        "     ELSE 0 END) AS transferred"
        " FROM journal WHERE user_id = $1 AND ts >= $3 AND ts < $4"
        " GROUP BY 1, 2",
        user,
        seconds,
        start,
        end,
    )
    opening = {
        row["asset"]: _minor(row["amount"], scales[row["asset"]])
        for row in opening_rows
        if row["asset"] in scales
    }
    buckets: dict[datetime, dict[str, tuple[int, int]]] = {}
    for row in bucket_rows:
        scale = scales.get(row["asset"])
        if scale is not None:
            buckets.setdefault(row["bucket"], {})[row["asset"]] = (
                _minor(row["amount"], scale),
                _minor(row["transferred"], scale),
            )
    return Moves(opening, buckets)


async def last_prices(db: asyncpg.Pool | asyncpg.Connection) -> dict[str, str]:
    """Each market's last stored trade price (markets without trades are left out): the
    same store as the fills, so positions and prices are read at one point of dbproc's
    progress."""
    rows = await db.fetch(
        "SELECT m.name, t.price FROM markets m CROSS JOIN LATERAL"
        " (SELECT price FROM trades WHERE market = m.name"
        "  ORDER BY ts DESC, trade_id DESC LIMIT 1) t"
    )
    return {row["name"]: format_decimal(row["price"]) for row in rows}


async def last_price_before(
    db: asyncpg.Pool | asyncpg.Connection, market: str, moment: datetime
) -> Decimal | None:
    """The market's last trade price before `moment`."""
    price: Decimal | None = await db.fetchval(
        "SELECT price FROM trades WHERE market = $1 AND ts < $2"
        " ORDER BY ts DESC, trade_id DESC LIMIT 1",
        market,
        moment,
    )
    return price
