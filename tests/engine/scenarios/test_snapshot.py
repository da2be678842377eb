"""Engine scenarios (see tests/engine/scenarios/common.py for the market and the harness).

Snapshots: a round trip continues identically; garbage is refused.
"""

from typing import Any

import msgspec
import pytest

from engine.core import Engine
from engine.replay import ReplaySession
from engine.snapshot import (
    SnapshotError,
    dump_engine,
    dump_ledger,
    engine_state,
    load_engine,
    load_ledger,
    state_hash,
)
from tests.engine.scenarios.common import EASY, Harness, check_invariants, fields
from xch.schemas import SELL, Depth, Event

SETUP: list[dict[str, Any] | str] = [
    {"op": "deposit", "user": "alice", "asset": "XYZ", "amount": "1000"},
    {"op": "deposit", "user": "alice", "asset": "ABC", "amount": "10"},
    {"op": "deposit", "user": "bob", "asset": "XYZ", "amount": "1000"},
    {"op": "deposit", "user": "bob", "asset": "ABC", "amount": "10"},
    {"op": "deposit", "user": "sam", "asset": "ABC", "amount": "10"},
    {"op": "place", "id": "z1", "user": "alice", "side": "buy", "price": "95", "qty": "2"},
    {"op": "place", "id": "a2", "user": "alice", "side": "buy", "price": "97", "qty": "1"},
    {"op": "place", "id": "m3", "user": "alice", "side": "sell", "price": "110", "qty": "2"},
    {"op": "place", "id": "s1", "user": "sam", "side": "sell", "price": "105", "qty": "1"},
    {"op": "place", "id": "s2", "user": "bob", "side": "sell", "price": "105", "qty": "2"},
    {"op": "place", "id": "b1", "user": "bob", "side": "buy", "price": "96", "qty": "1"},
    {"op": "place", "id": "s3", "user": "sam", "side": "sell", "price": "104", "qty": "3"},
    {"op": "place", "id": "x4", "user": "alice", "side": "buy", "price": "104", "qty": "1"},
    "end_batch",
    {"op": "cancel", "id": "b1", "user": "bob"},  # its level stays dirty across the snapshot
]
CONTINUATION: list[dict[str, Any] | str] = [
    # 2 @ 104 from s3, then s1 (older than s2) at 105
    {"op": "place", "id": "y5", "user": "alice", "side": "buy", "price": "105", "qty": "3"},
    {"op": "cancel_all", "user": "alice"},  # z1, a2, m3: placement order
    {"op": "place", "id": "s4", "user": "sam", "side": "sell", "price": "103", "qty": "1"},
    # s4 at 103, then bob's own s2 at 105 expires (EXPIRE_MAKER), then nothing: expired
    {
        "op": "place",
        "id": "b2",
        "user": "bob",
        "side": "buy",
        "price": "105",
        "qty": "3",
        "tif": "IOC",
    },
    {"op": "place", "id": "q", "user": "bob", "side": "sell", "type": "market", "qty": "1"},
    "end_batch",
]


def run_script(session: ReplaySession, script: list[Any], start: int) -> list[Event]:
    events: list[Event] = []
    for n, command in enumerate(script, start):
        if command == "end_batch":
            session.end_batch(str(n), n)
        else:
            session.submit(command, str(n), n)
        events.extend(session.engine.take_events())
    return events


def test_snapshot_round_trip_then_identical_continuation() -> None:
    original = ReplaySession(EASY)
    run_script(original, SETUP, 1)
    engine_bytes, ledger_bytes = dump_engine(original.engine), dump_ledger(original.ledger)
    restored = ReplaySession(
        EASY, load_engine(EASY, engine_bytes), load_ledger([EASY], ledger_bytes)
    )
    assert state_hash(restored.engine, restored.ledger) == state_hash(
        original.engine, original.ledger
    )
    assert dump_engine(restored.engine) == engine_bytes
    start = len(SETUP) + 1
    expected = run_script(original, CONTINUATION, start)
    got = run_script(restored, CONTINUATION, start)
    assert got == expected
    assert state_hash(restored.engine, restored.ledger) == state_hash(
        original.engine, original.ledger
    )
    check_invariants(restored.engine, restored.ledger)
    # what the continuation did, as hand-checked
    kinds = [(type(e).__name__, getattr(e, "order_id", getattr(e, "maker_order", ""))) for e in got]
    assert kinds == [
        ("OrderAccepted", "y5"),
        ("Trade", "s3"),
        ("OrderDone", "s3"),
        ("Trade", "s1"),
        ("OrderDone", "s1"),
        ("OrderDone", "y5"),
        ("OrderDone", "z1"),  # cancel_all: oldest first, survived the restore
        ("OrderDone", "a2"),
        ("OrderDone", "m3"),
        ("OrderAccepted", "s4"),
        ("OrderAccepted", "b2"),
        ("Trade", "s4"),
        ("OrderDone", "s4"),
        ("OrderDone", "s2"),  # bob's own maker, expired by self-trade prevention
        ("OrderDone", "b2"),
        ("OrderAccepted", "q"),
        ("OrderDone", "q"),
        ("Depth", ""),
    ]
    depth = got[-1]
    assert isinstance(depth, Depth)
    # the bid at 96 canceled before the snapshot is in the first depth after it
    assert depth.bids == [(97, 0), (96, 0), (95, 0)]
    assert depth.asks == [(103, 0), (104, 0), (105, 0), (110, 0)]
    assert restored.engine.orders == {}


def test_snapshot_keeps_fifo_within_a_level() -> None:
    h = Harness()
    h.deposit("sam", base=100)
    h.deposit("sue", base=100)
    h.deposit("bob", quote=10_000)
    h.place("s1", "sam", SELL, 100, 1)
    h.place("s2", "sue", SELL, 100, 1)
    engine = load_engine(EASY, dump_engine(h.engine))
    assert [o.order_id for o in engine.asks.live_orders(100)] == ["s1", "s2"]
    assert list(engine.by_user) == ["sam", "sue"]
    assert {k: fields(o) for k, o in engine.orders.items()} == {
        "s1": ("s1", "sam", SELL, 100, 1, 100, 0),
        "s2": ("s2", "sue", SELL, 100, 1, 100, 0),
    }
    assert fields(engine.by_user["sue"]["s2"]) == fields(h.engine.orders["s2"])


def _garbage() -> list[bytes]:
    good = engine_state(Engine(EASY))
    return [
        b"",
        b"garbage",
        b"\xc1",
        msgspec.msgpack.encode({}),
        msgspec.msgpack.encode([1, 2, 3]),
        msgspec.msgpack.encode("snapshot"),
        msgspec.msgpack.encode(good | {"market": "btc-usd"}),
        msgspec.msgpack.encode(good | {"v": 99}),
        msgspec.msgpack.encode({k: v for k, v in good.items() if k != "orders"}),
        msgspec.msgpack.encode(good | {"orders": [["o1", "bob"]]}),
        msgspec.msgpack.encode(good | {"stops": [[{"kind": "place"}, 0, 0, 1]]}),
        msgspec.msgpack.encode(good | {"stops": [["x1"]]}),
        msgspec.msgpack.encode(good)[:-3],
    ]


@pytest.mark.parametrize("data", _garbage())
def test_load_engine_refuses_garbage(data: bytes) -> None:
    with pytest.raises(SnapshotError):
        load_engine(EASY, data)
