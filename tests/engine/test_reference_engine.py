"""The benchmark's minimal reference engine (bench/reference_engine.py) matches correctly: a
few scenarios, and the same book as our engine's on a workload where fees, balances and
self-trade prevention change nothing."""

import msgspec

from bench.engine import MARKET, funded_session
from bench.reference_engine import ReferenceEngine
from bench.workload import standard_workload
from xch.schemas import BUY, GTC, SELL, STP_NONE, Cancel, OrderRejected, Place
from xch.schemas import MARKET as MARKET_ORDER


def test_price_then_time_priority() -> None:
    engine = ReferenceEngine()
    engine.limit("a", SELL, 100, 10)
    engine.limit("b", SELL, 100, 10)
    engine.limit("c", SELL, 99, 5)
    assert engine.limit("t", BUY, 100, 15) == 15
    assert engine.depth(SELL) == [(100, 10)]
    assert list(engine.orders) == ["b"]
    assert engine.depth(BUY) == []


def test_limit_rests_what_it_cannot_fill_within_its_price() -> None:
    engine = ReferenceEngine()
    engine.limit("a", BUY, 100, 4)
    engine.limit("b", BUY, 101, 3)
    assert engine.limit("t", SELL, 101, 5) == 3
    assert engine.depth(SELL) == [(101, 2)]
    assert engine.depth(BUY) == [(100, 4)]


def test_cancel_takes_an_order_out_of_its_level() -> None:
    engine = ReferenceEngine()
    engine.limit("a", SELL, 100, 10)
    engine.limit("b", SELL, 100, 7)
    engine.limit("c", SELL, 102, 1)
    assert engine.cancel("a")
    assert not engine.cancel("a")
    assert not engine.cancel("unknown")
    assert engine.depth(SELL) == [(100, 7), (102, 1)]
    assert engine.limit("t", BUY, 100, 5) == 5  # b, the canceled a skipped
    assert engine.cancel("c")
    assert engine.depth(SELL) == [(100, 2)]


def test_market_order_sweeps_levels_and_never_rests() -> None:
    engine = ReferenceEngine()
    engine.limit("a", BUY, 100, 2)
    engine.limit("b", BUY, 98, 3)
    assert engine.market(SELL, 9) == 5
    assert engine.depth(BUY) == []
    assert engine.depth(SELL) == []
    assert not engine.orders


def test_same_book_as_our_engine() -> None:
    """Limits, cancels and every tenth order at market, self-trades allowed (STP off)."""
    workload = standard_workload(3_000, seed=7)
    commands: list[Place | Cancel] = []
    for number, command in enumerate(workload.commands):
        if isinstance(command, Place):
            command = msgspec.structs.replace(command, stp=STP_NONE)
            if number % 10 == 0:
                command = msgspec.structs.replace(command, type=MARKET_ORDER, price=0, tif=GTC)
        commands.append(command)
    rules = MARKET.rules()
    ours = funded_session(rules, workload.users)
    reference = ReferenceEngine()
    for command in commands:
        ours.submit_parsed(command, "1")
        reference.process(command)
    refused = [event for event in ours.engine.out if isinstance(event, OrderRejected)]
    assert {event.op for event in refused} <= {"cancel"}  # of orders already filled
    assert reference.depth(BUY) == ours.engine.bids.depth()
    assert reference.depth(SELL) == ours.engine.asks.depth()
    assert reference.depth(BUY) and reference.depth(SELL)
    assert set(reference.orders) == set(ours.engine.orders)
