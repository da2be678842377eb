"""The replay session: one market's engine with the api's locking in front of it and the
reference ledger behind it, in process (replay, the benchmarks, the tests). Compiled with the
core (`ledger.compiled.MODULES`); `engine.replay` runs it from the command line.
"""

from typing import Any

from engine.commands import CommandError, FundsRequest, ParsedCommand, parse_command
from engine.core import Engine
from ledger.locks import list_lock, lock_amount, spent_asset
from ledger.natives import CANCEL, PLACE, SIDES
from ledger.reference import Ledger
from ledger.tickets import Ticket
from xch.market import MarketRules
from xch.schemas import BUY, MARKET, Place, PlaceList, ResultCode


class ReplaySession:
    """An engine with the api's locking in front of it and the reference ledger behind it."""

    def __init__(
        self, rules: MarketRules, engine: Engine | None = None, ledger: Ledger | None = None
    ) -> None:
        self.rules = rules
        self.engine = engine or Engine(rules)
        self.ledger = ledger or Ledger([rules])
        self._base, self._quote = rules.base, rules.quote

    def submit(self, raw: Any, input_id: str, ts: int = 0) -> None:
        """Apply one JSON command; its events land in `engine.out`, already settled."""
        try:
            command = parse_command(raw, self.rules)
        except CommandError as exc:
            self._refuse(exc, input_id, ts)
            return
        self.submit_parsed(command, input_id, ts)

    def submit_parsed(self, command: ParsedCommand, input_id: str, ts: int = 0) -> None:
        engine = self.engine
        start = len(engine.out)
        if isinstance(command, PLACE):
            self._place(command, input_id, ts)
        elif type(command) is CANCEL:  # an isinstance that misses calls the metaclass
            engine.cancel(command, input_id, ts)
        elif isinstance(command, PlaceList):
            self._place_list(command, input_id, ts)
        elif isinstance(command, FundsRequest):
            self._move_funds(command, input_id, ts)
        else:
            engine.process(command, input_id, ts)
        self.ledger.settle_from(engine.out, start)

    def _place(self, order: Place, input_id: str, ts: int) -> None:
        ticket = Ticket.of(order)
        side = ticket.side
        if side not in SIDES:
            self.engine.reject(order, ResultCode.INVALID_COMMAND, input_id, ts)
            return
        amount = lock_amount(self.rules, ticket, self.engine.asks)
        if self.ledger.lock(ticket.user, self._quote if side == BUY else self._base, amount):
            self.engine.place_ticket(ticket, amount, input_id, ts)
        else:
            self.engine.reject(order, ResultCode.INSUFFICIENT_FUNDS, input_id, ts)

    def _place_list(self, order_list: PlaceList, input_id: str, ts: int) -> None:
        """Lock as the api does: only two limit or stop orders of one side have a list lock."""
        legs = order_list.legs
        sides = {leg.side for leg in legs}
        market_leg = any(leg.type == MARKET for leg in legs)
        if len(legs) != 2 or len(sides) != 1 or not sides <= set(SIDES) or market_leg:
            self.engine.place_list(order_list, 0, input_id, ts)
            return
        amount = list_lock(self.rules, legs)
        if self.ledger.lock(order_list.user, spent_asset(self.rules, legs[0].side), amount):
            self.engine.place_list(order_list, amount, input_id, ts)
        else:
            code = ResultCode.INSUFFICIENT_FUNDS
            for leg in legs:
                self.engine.refuse(
                    leg.order_id, order_list.user, leg.side, "place_list", code, 0, input_id, ts
                )

    def end_batch(self, input_id: str, ts: int = 0) -> None:
        self.engine.flush_depth(input_id, ts)

    def _move_funds(self, request: FundsRequest, input_id: str, ts: int) -> None:
        if request.amount < 0 and self.ledger.free(request.user, request.asset) < -request.amount:
            code = ResultCode.INSUFFICIENT_FUNDS
            self._refuse(CommandError(code, "", op="withdraw", user=request.user), input_id, ts)
            return
        self.engine.record_funds(request.user, request.asset, request.amount, input_id, ts)

    def _refuse(self, error: CommandError, input_id: str, ts: int) -> None:
        self.engine.refuse(
            error.order_id, error.user, error.side, error.op, error.code, 0, input_id, ts
        )
