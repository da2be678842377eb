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

from engine.session import ReplaySession
from engine.snapshot import state_hash
from xch.market import Market, MarketRules
from xch.money import format_minor, format_units
from xch.schemas import Event, OrderAccepted, OrderDone, OrderRejected, Trade

__all__ = ["ReplaySession", "event_json", "final_state", "load_market", "main", "run"]


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
