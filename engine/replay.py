"""Replay commands through one market's engine and reference ledger.

    python -m engine.replay --market MARKET.yaml INPUT.jsonl [--batch N]

reads a Market manifest and JSON lines of commands (decimal strings), and writes JSON lines
of events to stdout, ending with one `final` line: balances, the book and the state hash.
Placing locks funds as the api does (`ledger.locks.lock_amount`); a place that free funds do
not cover is refused with `insufficient_funds`. Depth events are emitted after every batch
of N commands (default 1).
"""

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import msgspec
import yaml

from engine.commands import CommandError, FundsRequest, ParsedCommand, parse_command
from engine.core import Engine
from engine.snapshot import state_hash
from ledger.locks import list_lock, lock_amount, spent_asset
from ledger.reference import Ledger
from xch.market import Market, MarketRules
from xch.money import format_minor, format_units
from xch.schemas import (
    BUY,
    MARKET,
    SIDES,
    Cancel,
    Event,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    Place,
    PlaceList,
    ResultCode,
    Trade,
)


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
        if isinstance(command, Place):
            self._place(command, input_id, ts)
        elif type(command) is Cancel:  # an isinstance that misses calls the metaclass
            engine.cancel(command, input_id, ts)
        elif isinstance(command, PlaceList):
            self._place_list(command, input_id, ts)
        elif isinstance(command, FundsRequest):
            self._move_funds(command, input_id, ts)
        else:
            engine.process(command, input_id, ts)
        self.ledger.settle_from(engine.out, start)

    def _place(self, order: Place, input_id: str, ts: int) -> None:
        if order.side not in SIDES:
            self.engine.reject(order, ResultCode.INVALID_COMMAND, input_id, ts)
            return
        amount = lock_amount(self.rules, order, self.engine.asks)
        if self.ledger.lock(order.user, self._quote if order.side == BUY else self._base, amount):
            self.engine.place_locked(order, amount, input_id, ts)
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


def run(
    rules: MarketRules, lines: Iterable[str], batch: int = 1
) -> Iterator[Event | dict[str, Any]]:
    """Events for each input line, then the final state as a dict."""
    session = ReplaySession(rules)
    input_id = "0"
    pending = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        input_id = str(number)
        try:
            raw = msgspec.json.decode(line)
        except msgspec.DecodeError:
            raw = None
        ts = raw.get("ts", 0) if isinstance(raw, dict) and isinstance(raw.get("ts"), int) else 0
        session.submit(raw, input_id, ts)
        pending += 1
        if pending >= batch:
            session.end_batch(input_id, ts)
            pending = 0
        yield from session.engine.take_events()
    session.end_batch(input_id)
    yield from session.engine.take_events()
    yield final_state(session)


def final_state(session: ReplaySession) -> dict[str, Any]:
    rules = session.rules
    scales = {rules.base: rules.base_scale, rules.quote: rules.quote_scale}
    balances = {
        user: {
            asset: {
                "free": format_minor(free, scales[asset]),
                "locked": format_minor(locked, scales[asset]),
            }
            for asset, (free, locked) in assets.items()
        }
        for user, assets in session.ledger.snapshot().items()
    }
    engine = session.engine
    return {
        "kind": "final",
        "balances": balances,
        "book": {
            "bids": [_level_text(rules, level) for level in engine.bids.depth()],
            "asks": [_level_text(rules, level) for level in engine.asks.depth()],
        },
        "state_hash": state_hash(engine, session.ledger),
    }


def _level_text(rules: MarketRules, level: tuple[int, int]) -> list[str]:
    price, lots = level
    return [format_units(price, rules.tick), format_units(lots, rules.lot)]


def event_json(rules: MarketRules, event: Event) -> dict[str, Any]:
    """An event as JSON, with its amounts as decimal strings and its kind named."""
    data: dict[str, Any] = {"kind": type(event).__struct_config__.tag}
    data.update(msgspec.structs.asdict(event))
    for key in ("price", "stop_price", "last_price"):
        if key in data:
            data[key] = format_units(data[key], rules.tick)
    for key in ("qty", "filled_qty"):
        if key in data:
            data[key] = format_units(data[key], rules.lot)
    if "quote_qty" in data:
        data["quote_qty"] = format_minor(data["quote_qty"], rules.quote_scale)
    _format_funds(rules, event, data)
    if "bids" in data:
        data["bids"] = [_level_text(rules, level) for level in data["bids"]]
        data["asks"] = [_level_text(rules, level) for level in data["asks"]]
    return data


def _format_funds(rules: MarketRules, event: Event, data: dict[str, Any]) -> None:
    """Money fields in the scale of the asset they are in."""

    def quote_or_base(side: str) -> int:
        return rules.quote_scale if side == "buy" else rules.base_scale

    if isinstance(event, OrderAccepted):
        data["locked"] = format_minor(event.locked, quote_or_base(event.side))
    elif isinstance(event, OrderRejected | OrderDone):
        # A refusal that locked nothing has no side to name an asset by: 0 has no scale.
        unlocked, side = event.unlocked, event.side
        data["unlocked"] = format_minor(unlocked, quote_or_base(side)) if side else str(unlocked)
    elif isinstance(event, Trade):
        buyer_is_taker = event.taker_side == "buy"
        taker_scale = rules.base_scale if buyer_is_taker else rules.quote_scale
        maker_scale = rules.quote_scale if buyer_is_taker else rules.base_scale
        data["taker_fee"] = format_minor(event.taker_fee, taker_scale)
        data["maker_fee"] = format_minor(event.maker_fee, maker_scale)
        data["taker_unlocked"] = format_minor(event.taker_unlocked, rules.quote_scale)
    elif "amount" in data:
        scale = rules.base_scale if data["asset"] == rules.base else rules.quote_scale
        data["amount"] = format_minor(data["amount"], scale)


def load_market(path: Path) -> MarketRules:
    return Market.model_validate(yaml.safe_load(path.read_text())).rules()


def main(argv: list[str] | None = None, stdout: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.replay", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--market", required=True, type=Path, help="Market manifest (YAML)")
    parser.add_argument("--batch", type=int, default=1, help="commands per depth event")
    parser.add_argument("input", type=Path, help="JSON lines of commands ('-' for stdin)")
    args = parser.parse_args(argv)
    rules = load_market(args.market)
    source = sys.stdin if str(args.input) == "-" else args.input.open()
    encoder = msgspec.json.Encoder()
    with source:
        for item in run(rules, source, max(1, args.batch)):
            data = item if isinstance(item, dict) else event_json(rules, item)
            stdout.write(encoder.encode(data).decode())
            stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
