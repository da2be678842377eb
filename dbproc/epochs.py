"""Engine epochs: storing a market's history when Redis came back older (docs/storage.md,
"Redis rollback").

Each events entry names the engine epoch that committed it (`xch.wire.Epoch`). The first time
dbproc meets an epoch it records it in `epochs`, in a transaction of its own holding the
market's advisory lock exclusively (every store holds it shared: stores in flight are
committed first), with the offsets its events are stored under: 0 and 0 unless the history
stored goes further than the state the epoch resumed from, and then whatever puts its first
event right after everything stored. Recorded offsets never change, so every entry of an
epoch is stored the same way, whenever and by whichever replica.
"""

from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import msgspec

from xch.schemas import Event, Trade
from xch.wire import Epoch

LOCK_KEY = "hashtextextended('epochs:' || $1, 0)"
"""The advisory lock of a market's epochs, from its name ($1)."""
LOCK_SHARED = f"pg_advisory_xact_lock_shared({LOCK_KEY})"


@dataclass(frozen=True, slots=True)
class Offsets:
    """What an epoch's stored ids add to the engine's."""

    seq: int
    trade_id: int


NONE = Offsets(0, 0)


@dataclass(frozen=True, slots=True)
class Recorded:
    """An epoch as `epochs` has it."""

    market: str
    epoch: Epoch
    offsets: Offsets
    rolled_back: int
    """Events of stored history the epoch does not continue (Redis came back older)."""


def offsets_for(
    epoch: Epoch,
    latest: Offsets,
    previous: Offsets | None,
    stored_seq: int,
    stored_trade_id: int,
) -> tuple[Offsets, int]:
    """The offsets of a new `epoch` and how many stored events it rolled back, given the
    latest recorded epoch's offsets, its previous epoch's (None: not recorded; the latest's
    then stand in) and the highest seq and trade id stored for the market. The stored ids of
    the new epoch come after every stored one; an epoch that continues the stored history
    keeps the latest offsets."""
    offsets = Offsets(
        max(latest.seq, stored_seq - epoch.seq),
        max(latest.trade_id, stored_trade_id - epoch.trade_id),
    )
    resumed_at = epoch.seq + (previous or latest).seq
    return offsets, max(0, stored_seq - resumed_at)


_RECORDED = (
    "SELECT seq_offset, trade_offset, rolled_back FROM epochs WHERE market = $1 AND epoch = $2"
)
_LATEST = (
    "SELECT seq_offset, trade_offset FROM epochs WHERE market = $1 ORDER BY number DESC LIMIT 1"
)
_STORED = (
    "SELECT (SELECT coalesce(max(last_seq), 0) FROM stored_batches WHERE market = $1), "
    "(SELECT coalesce(max(trade_id), 0) FROM trades WHERE market = $1)"
)
_RECORD = (
    "INSERT INTO epochs (market, epoch, previous, resumed_seq, resumed_trade_id, seq_offset, "
    "trade_offset, rolled_back) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)


async def record(conn: asyncpg.Connection, market: str, epoch: Epoch) -> tuple[Recorded, bool]:
    """`epoch` as recorded, recording it first if no one has; and whether this call did."""
    async with conn.transaction():
        await conn.execute(f"SELECT pg_advisory_xact_lock({LOCK_KEY})", market)
        row = await conn.fetchrow(_RECORDED, market, epoch.epoch)
        if row is not None:
            return Recorded(market, epoch, Offsets(row[0], row[1]), row[2]), False
        latest = await _offsets(conn, _LATEST, market)
        previous = (
            NONE if epoch.previous == 0 else await _offsets(conn, _RECORDED, market, epoch.previous)
        )
        stored_seq, stored_trade_id = await conn.fetchrow(_STORED, market)
        offsets, rolled_back = offsets_for(
            epoch, latest or NONE, previous, stored_seq, stored_trade_id
        )
        await conn.execute(
            _RECORD, market, epoch.epoch, epoch.previous, epoch.seq, epoch.trade_id,
            offsets.seq, offsets.trade_id, rolled_back,
        )  # fmt: skip
    return Recorded(market, epoch, offsets, rolled_back), True


async def _offsets(conn: asyncpg.Connection, query: str, *args: object) -> Offsets | None:
    row = await conn.fetchrow(query, *args)
    return None if row is None else Offsets(row[0], row[1])


class EpochBook:
    """The offsets of the epochs this process met, recording new ones (`on_recorded` hears of
    each epoch this process recorded)."""

    def __init__(self, on_recorded: Callable[[Recorded], None]) -> None:
        self.on_recorded = on_recorded
        self.known: dict[tuple[str, int], Offsets] = {}

    async def offsets(self, conn: asyncpg.Connection, market: str, epoch: Epoch) -> Offsets:
        if epoch.epoch == 0:  # entries written before epochs: stored as they always were
            return NONE
        known = self.known.get((market, epoch.epoch))
        if known is None:
            recorded, fresh = await record(conn, market, epoch)
            known = self.known[market, epoch.epoch] = recorded.offsets
            if fresh:
                self.on_recorded(recorded)
        return known


def shifted(events: list[Event], offsets: Offsets) -> list[Event]:
    """`events` with their stored ids: seq and trade id plus the epoch's offsets."""
    if offsets == NONE:
        return events
    return [_shift(event, offsets) for event in events]


def _shift(event: Event, offsets: Offsets) -> Event:
    if isinstance(event, Trade):
        return msgspec.structs.replace(
            event, seq=event.seq + offsets.seq, trade_id=event.trade_id + offsets.trade_id
        )
    return msgspec.structs.replace(event, seq=event.seq + offsets.seq)
