"""Engine scenarios (see tests/engine/scenarios/common.py for the market and the harness).

Events carry the command's input id and time.
"""

from engine.replay import ReplaySession
from tests.engine.scenarios.common import EASY, M
from xch.schemas import DEFAULT_STP, GTC, LIMIT, SELL, Depth, OrderAccepted, OrderDone, Place, Trade


def test_events_carry_input_id_and_ts() -> None:
    session = ReplaySession(EASY)
    session.ledger.deposit("sam", "ABC", 100)
    session.ledger.deposit("bob", "XYZ", 10_000)
    place = Place("s1", "sam", SELL, LIMIT, 100, 1, 0, GTC, DEFAULT_STP, 0)
    session.submit_parsed(place, "1700000000000-0", 1_700_000_000_000)
    session.submit(
        {"op": "place", "id": "b1", "user": "bob", "side": "buy", "price": "100", "qty": "1"},
        "1700000000001-0",
        1_700_000_000_001,
    )
    session.end_batch("1700000000001-0", 1_700_000_000_001)
    events = session.engine.take_events()
    assert [(e.seq, e.input_id, e.ts) for e in events] == [
        (1, "1700000000000-0", 1_700_000_000_000),
        (2, "1700000000001-0", 1_700_000_000_001),
        (3, "1700000000001-0", 1_700_000_000_001),
        (4, "1700000000001-0", 1_700_000_000_001),
        (5, "1700000000001-0", 1_700_000_000_001),
        (6, "1700000000001-0", 1_700_000_000_001),
    ]
    assert all(e.market == M for e in events)
    assert [type(e) for e in events] == [
        OrderAccepted,
        OrderAccepted,
        Trade,
        OrderDone,
        OrderDone,
        Depth,
    ]
