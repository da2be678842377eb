"""Engine state to bytes and back, and a hash of it that replays can be compared by.

The snapshot lists resting orders in placement order: re-adding them in that order rebuilds
both the FIFO of every level and each user's oldest-first order list, so an engine restored
mid-stream emits exactly what the uninterrupted one would have. Waiting stops are listed in
arrival order with their arrival seq (their trigger priority), OCO lists as pairs of legs.
"""

import hashlib
from typing import Any

import msgspec

from engine.book import Order
from engine.core import Engine
from engine.stops import StopOrder
from ledger.reference import Ledger
from xch.market import MarketRules
from xch.schemas import Place

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1 predates stop orders: it has none


class SnapshotError(ValueError):
    """Bytes that are not a snapshot of this market's engine."""


def engine_state(engine: Engine) -> dict[str, Any]:
    return {
        "v": FORMAT_VERSION,
        "market": engine.market,
        "trading": engine.trading,
        "seq": engine.seq,
        "trade_seq": engine.trade_seq,
        "depth_update_id": engine.depth_update_id,
        "dirty_bids": sorted(engine.dirty_bids),
        "dirty_asks": sorted(engine.dirty_asks),
        "orders": [
            (o.order_id, o.user, o.side, o.price, o.remaining, o.locked, o.filled)
            for o in engine.orders.values()
        ],
        "last_price": engine.last_price,
        "stops": [
            (msgspec.to_builtins(stop.order), stop.locked, stop.need, stop.arrival)
            for stop in engine.stops.by_id.values()
        ],
        "siblings": list(engine.siblings.items()),
    }


def dump_engine(engine: Engine) -> bytes:
    """The engine's whole state; events not yet taken from `out` are not part of it."""
    return msgspec.msgpack.encode(engine_state(engine))


def load_engine(rules: MarketRules, data: bytes) -> Engine:
    try:
        state = msgspec.msgpack.decode(data)
        if state["v"] not in READABLE_VERSIONS or state["market"] != rules.name:
            raise SnapshotError(
                f"snapshot of {state['market']!r} v{state['v']}, not {rules.name!r}"
            )
        engine = Engine(rules)
        engine.trading = state["trading"]
        engine.seq = state["seq"]
        engine.trade_seq = state["trade_seq"]
        engine.depth_update_id = state["depth_update_id"]
        engine.dirty_bids.update(state["dirty_bids"])
        engine.dirty_asks.update(state["dirty_asks"])
        for fields in state["orders"]:
            engine.restore_order(Order(*fields))
        engine.last_price = state.get("last_price", 0)
        for order, locked, need, arrival in state.get("stops", []):
            engine.stops.add(StopOrder(msgspec.convert(order, Place), locked, need, arrival))
        engine.siblings.update(state.get("siblings", []))
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"not an engine snapshot: {exc}") from exc
    return engine


def dump_ledger(ledger: Ledger) -> bytes:
    return msgspec.msgpack.encode(
        {"accounts": ledger.snapshot(), "net_deposits": dict(sorted(ledger.net_deposits.items()))}
    )


def load_ledger(markets: list[MarketRules], data: bytes) -> Ledger:
    state = msgspec.msgpack.decode(data)
    ledger = Ledger(markets)
    for user, assets in state["accounts"].items():
        for asset, (free, locked) in assets.items():
            ledger.restore(user, asset, free, locked)
    ledger.net_deposits.update(state["net_deposits"])
    return ledger


def state_hash(engine: Engine, ledger: Ledger | None = None) -> str:
    """A hex digest of the book, the engine's counters and (if given) the balances."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(dump_engine(engine))
    if ledger is not None:
        digest.update(dump_ledger(ledger))
    return digest.hexdigest()
