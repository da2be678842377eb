"""Engine epochs (dbproc/epochs.py, docs/storage.md "Redis rollback"): the offsets of each
epoch keep every stored seq and trade id unique whatever older state Redis comes back with,
leave a history that only continues untouched, and report each rollback."""

from dataclasses import dataclass

import asyncpg
from hypothesis import given
from hypothesis import strategies as st

from dbproc.epochs import NONE, EpochBook, Offsets, Recorded, offsets_for, record, shifted
from xch.schemas import OrderDone, Trade
from xch.wire import NO_EPOCH, Epoch


@dataclass(frozen=True)
class RedisState:
    """What a Redis copy knows: the epoch of its stream's last entry, the engine's counters."""

    epoch: int
    seq: int
    trade_id: int


@given(
    st.lists(
        st.tuples(st.integers(1, 30), st.integers(0, 10), st.booleans(), st.integers(0, 1000)),
        min_size=1,
        max_size=12,
    )
)
def test_stored_ids_never_repeat_and_only_a_rollback_moves_them(
    epochs: list[tuple[int, int, bool, int]],
) -> None:
    """Each epoch resumes from the current Redis or (restored) from any copy taken before,
    then commits events (some trades), all stored."""
    copies = [RedisState(0, 0, 0)]
    current = copies[0]
    recorded: dict[int, Offsets] = {}
    latest = NONE
    stored_seqs: set[int] = set()
    stored_trades: set[int] = set()
    for number, (events, trades, restore, pick) in enumerate(epochs, start=1):
        trades = min(trades, events)
        start = copies[pick % len(copies)] if restore else current
        epoch = Epoch(number, start.epoch, start.seq, start.trade_id)
        previous = NONE if start.epoch == 0 else recorded.get(start.epoch)
        offsets, rolled_back = offsets_for(
            epoch, latest, previous, max(stored_seqs, default=0), max(stored_trades, default=0)
        )
        assert (rolled_back > 0) == (start != current)
        if start == current:
            assert offsets == latest
        recorded[number] = latest = offsets
        seqs = {start.seq + n + offsets.seq for n in range(1, events + 1)}
        trade_ids = {start.trade_id + n + offsets.trade_id for n in range(1, trades + 1)}
        assert not seqs & stored_seqs and not trade_ids & stored_trades
        stored_seqs |= seqs
        stored_trades |= trade_ids
        middle = RedisState(number, start.seq + events // 2, start.trade_id + trades // 2)
        current = RedisState(number, start.seq + events, start.trade_id + trades)
        copies += [middle, current]


def test_the_epoch_field_round_trips_and_old_entries_are_epoch_zero() -> None:
    epoch = Epoch(1_765_000_000_000_000, 1_764_000_000_000_000, 123, 45)
    assert Epoch.decode(epoch.encode()) == epoch
    assert Epoch.decode(None) == NO_EPOCH


def test_offsets_move_seqs_and_trade_ids_only_when_there_are_some() -> None:
    trade = Trade("m", 5, "1-0", 1, 9, 1, 1, 1, "a", "u", "b", "v", "buy", 0, 0, 0)
    done = OrderDone("m", 6, "1-0", 1, "b", "v", "buy", "filled", "", 1, 0)
    assert shifted([trade, done], NONE) == [trade, done]
    moved = shifted([trade, done], Offsets(100, 10))
    assert [e.seq for e in moved] == [105, 106]
    assert isinstance(moved[0], Trade) and moved[0].trade_id == 19


async def test_an_epoch_is_recorded_once_with_offsets_past_what_is_stored(
    db: asyncpg.Connection,
) -> None:
    await db.execute(
        "INSERT INTO stored_batches (market, first_seq, last_seq) VALUES ('m', 1, 100)"
    )
    heard: list[Recorded] = []
    book = EpochBook(heard.append)
    first = Epoch(10, 0, 100, 0)
    assert await book.offsets(db, "m", first) == NONE  # continues what is stored
    assert await book.offsets(db, "m", NO_EPOCH) == NONE
    rolled = Epoch(20, 10, 60, 0)  # Redis came back at seq 60
    assert await book.offsets(db, "m", rolled) == Offsets(40, 0)
    assert [r.rolled_back for r in heard] == [0, 40]
    # another process meets the same epochs: the offsets recorded, not recomputed
    await db.execute(
        "INSERT INTO stored_batches (market, first_seq, last_seq) VALUES ('m', 101, 500)"
    )
    again, fresh = await record(db, "m", rolled)
    assert not fresh and again.offsets == Offsets(40, 0) and again.rolled_back == 40
    assert await EpochBook(heard.append).offsets(db, "m", first) == NONE
    assert len(heard) == 2
