"""A `Ticket` (ledger/tickets.py) holds exactly a `Place`'s fields: `Ticket.of` reads them by
position, so a field added to or moved in `Place` must show here."""

import msgspec

from ledger.locks import lock_amount
from ledger.tickets import Ticket
from tests.engine.scenarios.common import EASY
from xch.market import MarketRules
from xch.schemas import BUY, GTC, LIMIT, STOP_LOSS_LIMIT, Place


def test_a_ticket_reads_every_field_of_its_place_in_order() -> None:
    place = Place(
        order_id="o1",
        user="alice",
        side=BUY,
        type=STOP_LOSS_LIMIT,
        price=101,
        qty=7,
        quote_qty=3,
        tif=GTC,
        stp="EXPIRE_BOTH",
        locked=555,
        client_order_id="c9",
        stop_price=99,
    )
    ticket = Ticket.of(place)
    assert [getattr(ticket, name) for name in place.__struct_fields__] == list(
        msgspec.structs.astuple(place)
    )
    assert ticket.place() == place


def test_a_ticket_locks_what_its_place_locks() -> None:
    rules: MarketRules = EASY
    place = Place("o1", "alice", BUY, LIMIT, 101, 7, 0, GTC, "NONE", 0)
    assert (
        lock_amount(rules, Ticket.of(place))
        == lock_amount(rules, place)
        == 101 * 7 * (rules.quote_per_tick_lot)
    )
