"""`balance_moves` (the journal's double entries) against the reference ledger."""

from collections import defaultdict
from typing import get_args, get_type_hints

from hypothesis import given

from engine.commands import ParsedCommand
from ledger.reference import EXTERNAL_ACCOUNT, TradeFields, balance_moves
from tests.engine.strategies import COARSE, Driver, scenarios
from xch.schemas import Funds, Trade

Scenario = tuple[list[ParsedCommand], int]


@given(scenarios())
def test_moves_sum_to_zero_per_event_and_rebuild_the_ledger(scenario: Scenario) -> None:
    commands, batch = scenario
    driver = Driver(COARSE.rules, batch)
    events = driver.run(commands)
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for event in events:
        moves = balance_moves(event, COARSE.rules)
        per_asset: dict[str, int] = defaultdict(int)
        for move in moves:
            per_asset[move.asset] += move.free + move.locked
            cell = totals[move.user, move.asset]
            cell[0] += move.free
            cell[1] += move.locked
        assert all(total == 0 for total in per_asset.values()), event
    expected = {
        (user, asset): (free, locked)
        for user, assets in driver.session.ledger.snapshot().items()
        for asset, (free, locked) in assets.items()
        if free or locked
    }
    rebuilt = {
        key: (free, locked)
        for key, (free, locked) in totals.items()
        if (free or locked) and key[0] != EXTERNAL_ACCOUNT
    }
    assert rebuilt == expected


def test_a_deposit_balances_against_the_outside() -> None:
    moves = balance_moves(Funds("m", 1, "i", 0, "7", "USD", 500), None)
    assert sorted(moves) == sorted([(EXTERNAL_ACCOUNT, "USD", -500, 0), ("7", "USD", 500, 0)])


def test_the_ledger_reads_a_trade_by_position_in_its_field_order() -> None:
    """`Ledger._settle_trade` reads a `Trade` by position; the test above, which rebuilds the
    ledger from named reads, catches two swapped fields of one type."""
    hints = get_type_hints(Trade)
    assert tuple(hints[name] for name in Trade.__struct_fields__) == get_args(TradeFields)
