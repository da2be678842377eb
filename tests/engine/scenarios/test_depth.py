"""Engine scenarios (see tests/engine/scenarios/common.py for the market and the harness).

Depth events: changed levels, best first, with update ids.
"""

from tests.engine.scenarios.common import Harness, M
from xch.schemas import BUY, IOC, SELL, Depth


def test_depth_lists_changed_levels_best_first_with_update_ids() -> None:
    h = Harness()
    h.deposit("alice", quote=100_000)
    h.deposit("sam", base=1_000)
    h.deposit("bob", quote=100_000)
    # batch 1: seqs 1..4, depth 5
    h.place("b1", "alice", BUY, 99, 1)
    h.place("b2", "alice", BUY, 100, 2)
    h.place("s1", "sam", SELL, 102, 1)
    h.place("s2", "sam", SELL, 101, 3)
    assert h.end_batch() == [
        Depth(M, 5, "in-4", 4, 1, 5, [(100, 2), (99, 1)], [(101, 3), (102, 1)])
    ]
    # batch 2: bob takes all of 101 (seqs 6-9), alice cancels b1 (10), adds to 100 (11),
    # sam adds 103 (12): depth 13 covers 6..13
    h.place("x", "bob", BUY, 101, 3)
    h.cancel("b1", "alice")
    h.place("b3", "alice", BUY, 100, 1)
    h.place("s3", "sam", SELL, 103, 1)
    assert h.end_batch() == [
        Depth(M, 13, "in-8", 8, 6, 13, [(100, 3), (99, 0)], [(101, 0), (103, 1)])
    ]
    # a batch that touches nothing emits nothing; the next one follows on from 13
    assert h.end_batch() == []
    h.deposit("carol", base=100)
    h.place("c1", "carol", SELL, 100, 1, tif=IOC)  # seqs 14-16, takes 1 from b2 at 100
    assert h.end_batch() == [Depth(M, 17, "in-9", 9, 14, 17, [(100, 2)], [])]
    assert h.book() == ([(100, 2)], [(102, 1), (103, 1)])
