"""`python -m engine.replay` as a real subprocess on a small input, with hand-computed results.

The example market btc-usd: BTC scale 8, USD scale 6, tick 0.01, lot 0.0001, min notional
1.00, maker 10 bps, taker 20 bps. So 1 lot = 10_000 sat and n lots at p ticks cost p * n
micro-USD (quote_per_tick_lot = 1).

The script:

1. alice deposits 1000 USD, bob 1 BTC.
2. bob sells 0.0100 @ 30000.00 (s1) and 0.0100 @ 30010.00 (s2), GTC: 0.01 BTC locked each.
3. alice buys 0.0150 @ 30005.00 IOC (b1), locking 30005 * 0.015 = 450.075 USD. It takes s1:
   0.01 BTC for 300.000000 USD; price improvement (30005 - 30000) * 0.01 = 0.050000 USD is
   unlocked in the trade; alice's fee is ceil(1_000_000 sat * 20 / 10_000) = 2000 sat
   (0.00002000 BTC), bob's ceil(300_000_000 * 10 / 10_000) = 300_000 micro (0.300000 USD).
   s2 is above the limit, so the remaining 0.0050 expires and unlocks 150.025000 USD.
4. a line that is not JSON, and a price finer than the tick: both refused, the run goes on.
5. alice bids 0.0020 @ 29990.00 GTC (b3): 59.980000 USD locked.
6. bob withdraws 1000 USD he does not have; alice cancels an unknown order: both refused.

Balances: alice USD 1000 - 450.075 + 0.05 + 150.025 - 59.98 = 640.020000 free, 59.980000
locked; BTC 0.01 - 0.00002 = 0.00998000. bob BTC 1 - 0.02 = 0.98 free, 0.01 locked; USD
300 - 0.3 = 299.700000. @fees 0.00002000 BTC and 0.300000 USD.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.engine.strategies import BTC_USD_YAML, ROOT

LINES = [
    '{"op": "deposit", "user": "alice", "asset": "USD", "amount": "1000"}',
    '{"op": "deposit", "user": "bob", "asset": "BTC", "amount": "1"}',
    '{"op": "place", "id": "s1", "user": "bob", "side": "sell", "type": "limit",'
    ' "price": "30000.00", "qty": "0.0100", "client_order_id": "mine-1"}',
    '{"op": "place", "id": "s2", "user": "bob", "side": "sell", "type": "limit",'
    ' "price": "30010.00", "qty": "0.0100", "tif": "GTC"}',
    '{"op": "place", "id": "b1", "user": "alice", "side": "buy", "type": "limit",'
    ' "price": "30005.00", "qty": "0.0150", "tif": "IOC"}',
    "this is not json {",
    '{"op": "place", "id": "b2", "user": "alice", "side": "buy", "type": "limit",'
    ' "price": "30000.001", "qty": "0.0100"}',
    '{"op": "place", "id": "b3", "user": "alice", "side": "buy", "type": "limit",'
    ' "price": "29990.00", "qty": "0.0020"}',
    '{"op": "withdraw", "user": "bob", "asset": "USD", "amount": "1000"}',
    '{"op": "cancel", "id": "nope", "user": "alice"}',
]

FINAL_BALANCES = {
    "@fees": {
        "BTC": {"free": "0.00002000", "locked": "0.00000000"},
        "USD": {"free": "0.300000", "locked": "0.000000"},
    },
    "alice": {
        "BTC": {"free": "0.00998000", "locked": "0.00000000"},
        "USD": {"free": "640.020000", "locked": "59.980000"},
    },
    "bob": {
        "BTC": {"free": "0.98000000", "locked": "0.01000000"},
        "USD": {"free": "299.700000", "locked": "0.000000"},
    },
}
FINAL_BOOK = {"bids": [["29990.00", "0.0020"]], "asks": [["30010.00", "0.0100"]]}

# Fields that are counters, not amounts: the only numbers allowed in the output.
INTEGER_FIELDS = {"seq", "ts", "trade_id", "code", "first_update_id", "last_update_id"}
AMOUNT_FIELDS = {
    "price",
    "qty",
    "quote_qty",
    "filled_qty",
    "locked",
    "unlocked",
    "amount",
    "maker_fee",
    "taker_fee",
    "taker_unlocked",
    "free",
    "stop_price",
    "last_price",
}
DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def replay(tmp_path: Path, lines: list[str], *extra: str, hash_seed: str = "0") -> list[Any]:
    source = tmp_path / "input.jsonl"
    source.write_text("\n".join(lines) + "\n")
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    result = subprocess.run(
        [sys.executable, "-m", "engine.replay", "--market", str(BTC_USD_YAML), *extra, str(source)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def check_decimals(value: Any, key: str = "") -> None:
    """No float anywhere; every amount a plain decimal string; numbers only for counters."""
    if isinstance(value, dict):
        for k, v in value.items():
            check_decimals(v, k)
    elif isinstance(value, list):
        for v in value:
            check_decimals(v, key)
    elif isinstance(value, bool | float):
        raise AssertionError(f"{key}: {value!r} is not a string")
    elif isinstance(value, int):
        assert key in INTEGER_FIELDS, f"{key}: {value!r} is a number, not a decimal string"
    elif key in AMOUNT_FIELDS or key in ("bids", "asks"):
        assert isinstance(value, str) and DECIMAL.fullmatch(value), (key, value)


def without_counters(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in ("market", "seq", "input_id", "ts")}


def test_replay_cli_outcomes(tmp_path: Path) -> None:
    out = replay(tmp_path, LINES)
    check_decimals(out)
    events, final = out[:-1], out[-1]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["market"] == "btc-usd" for e in events)
    kinds = [e["kind"] for e in events if e["kind"] != "depth"]
    assert kinds == [
        "funds",
        "funds",
        "order_accepted",
        "order_accepted",
        "order_accepted",
        "trade",
        "order_done",
        "order_done",
        "order_rejected",
        "order_rejected",
        "order_accepted",
        "order_rejected",
        "order_rejected",
    ]
    by_input: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if event["kind"] != "depth":
            by_input.setdefault(event["input_id"], []).append(without_counters(event))

    assert by_input["3"] == [
        {
            "kind": "order_accepted",
            "order_id": "s1",
            "user": "bob",
            "side": "sell",
            "type": "limit",
            "tif": "GTC",
            "stp": "EXPIRE_MAKER",
            "price": "30000.00",
            "qty": "0.0100",
            "quote_qty": "0.000000",
            "locked": "0.01000000",
            "client_order_id": "mine-1",
            "stop_price": "0.00",
            "list_id": "",
            "client_list_id": "",
        }
    ]
    accepted, trade, maker_done, taker_done = by_input["5"]
    assert accepted["locked"] == "450.075000" and accepted["tif"] == "IOC"
    assert trade == {
        "kind": "trade",
        "trade_id": 1,
        "price": "30000.00",
        "qty": "0.0100",
        "quote_qty": "300.000000",
        "maker_order": "s1",
        "maker_user": "bob",
        "taker_order": "b1",
        "taker_user": "alice",
        "taker_side": "buy",
        "maker_fee": "0.300000",
        "taker_fee": "0.00002000",
        "taker_unlocked": "0.050000",
    }
    assert maker_done == {
        "kind": "order_done",
        "order_id": "s1",
        "user": "bob",
        "side": "sell",
        "status": "filled",
        "reason": "",
        "filled_qty": "0.0100",
        "unlocked": "0.00000000",
    }
    assert taker_done == {
        "kind": "order_done",
        "order_id": "b1",
        "user": "alice",
        "side": "buy",
        "status": "expired",
        "reason": "time_in_force",
        "filled_qty": "0.0100",
        "unlocked": "150.025000",
    }
    # The malformed line and the bad price are refused; the run goes on.
    [malformed] = by_input["6"]
    assert malformed["kind"] == "order_rejected"
    assert (malformed["reason"], malformed["code"]) == ("invalid_command", 1000)
    [bad_price] = by_input["7"]
    assert bad_price["kind"] == "order_rejected"
    assert (bad_price["reason"], bad_price["code"]) == ("invalid_price", 1001)
    assert (bad_price["order_id"], bad_price["user"], bad_price["op"]) == ("b2", "alice", "place")
    assert by_input["8"][0]["locked"] == "59.980000"
    [withdraw] = by_input["9"]
    assert (withdraw["kind"], withdraw["op"], withdraw["reason"]) == (
        "order_rejected",
        "withdraw",
        "insufficient_funds",
    )
    [cancel] = by_input["10"]
    assert (cancel["order_id"], cancel["reason"], cancel["code"]) == ("nope", "unknown_order", 3003)

    depth = [e for e in events if e["kind"] == "depth"]
    assert depth[0]["first_update_id"] == 1
    for previous, event in itertools.pairwise(depth):
        assert event["first_update_id"] == previous["last_update_id"] + 1
    assert all(e["last_update_id"] == e["seq"] for e in depth)

    assert final["kind"] == "final"
    assert final["balances"] == FINAL_BALANCES
    assert final["book"] == FINAL_BOOK
    assert re.fullmatch(r"[0-9a-f]{32}", final["state_hash"])


def test_replay_cli_is_deterministic_across_processes(tmp_path: Path) -> None:
    """Same input, different hash seeds (set and dict iteration): the same bytes out."""
    first = replay(tmp_path, LINES, hash_seed="1")
    second = replay(tmp_path, LINES, hash_seed="2")
    assert first == second
    # Batching changes only where depth events fall (and so the seqs), not the outcome.
    batched = replay(tmp_path, LINES, "--batch", "4")
    assert batched[-1]["balances"] == FINAL_BALANCES
    assert batched[-1]["book"] == FINAL_BOOK

    def decisions(out: list[Any]) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in e.items() if k != "seq"} for e in out[:-1] if e["kind"] != "depth"
        ]

    assert decisions(batched) == decisions(first)
    assert len([e for e in batched if e["kind"] == "depth"]) < len(
        [e for e in first if e["kind"] == "depth"]
    )


STOP_LINES = [
    '{"op": "deposit", "user": "alice", "asset": "BTC", "amount": "1"}',
    '{"op": "deposit", "user": "bob", "asset": "USD", "amount": "10000"}',
    '{"op": "place", "id": "b1", "user": "bob", "side": "buy", "price": "30000.00",'
    ' "qty": "0.0100"}',
    '{"op": "place", "id": "s1", "user": "alice", "side": "sell", "price": "30000.00",'
    ' "qty": "0.0050"}',
    '{"op": "place", "id": "x1", "user": "alice", "side": "sell", "type": "stop_loss_limit",'
    ' "price": "29000.00", "stop_price": "29999.99", "qty": "0.0100"}',
    '{"op": "place_list", "id": "l1", "user": "alice", "client_list_id": "exit", "legs": ['
    '{"id": "la", "side": "sell", "type": "limit", "price": "31000.00", "qty": "0.0200",'
    ' "tif": "POST_ONLY"},'
    '{"id": "lb", "side": "sell", "type": "stop_loss", "stop_price": "29000.00",'
    ' "qty": "0.0200"}]}',
    '{"op": "place", "id": "x2", "user": "alice", "side": "sell", "type": "stop_loss",'
    ' "stop_price": "30000.00", "qty": "0.0100"}',
    '{"op": "place_list", "id": "l2", "user": "alice", "legs": "none"}',
    '{"op": "place", "id": "s2", "user": "alice", "side": "sell", "price": "30000.00",'
    ' "qty": "0.0050"}',
    '{"op": "place", "id": "b2", "user": "bob", "side": "buy", "price": "29999.99",'
    ' "qty": "0.0200"}',
    '{"op": "place", "id": "s3", "user": "alice", "side": "sell", "price": "29999.99",'
    ' "qty": "0.0050"}',
]


def test_replay_cli_stop_orders_and_lists(tmp_path: Path) -> None:
    """alice sells 0.005 to bob at 30000.00: the last price. Her stop-limit sell at 29999.99
    (limit 29000.00) waits and locks 0.01 BTC; her OCO list (limit maker 31000.00, stop-loss
    29000.00, 0.02 each) locks 0.02 BTC once. A stop at 30000.00 is already reached: refused.
    Her second sale at 30000.00 fills bob's rest: nothing triggers. Bob bids 0.02 at 29999.99
    and alice sells him 0.005: the last price 29999.99 triggers her stop-limit, which sells
    0.01 to bob's bid (its limit 29000.00 is below it); 0.005 of the bid is left.
    """
    out = replay(tmp_path, STOP_LINES)
    check_decimals(out)
    events, final = out[:-1], out[-1]
    by_input: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if event["kind"] != "depth":
            by_input.setdefault(event["input_id"], []).append(without_counters(event))
    [stop] = by_input["5"]
    assert (stop["kind"], stop["type"], stop["stop_price"], stop["locked"]) == (
        "order_accepted",
        "stop_loss_limit",
        "29999.99",
        "0.01000000",
    )
    legs = by_input["6"]
    assert [(e["order_id"], e["list_id"], e["client_list_id"], e["locked"]) for e in legs] == [
        ("la", "l1", "exit", "0.02000000"),
        ("lb", "l1", "exit", "0.00000000"),
    ]
    [refused] = by_input["7"]
    assert (refused["reason"], refused["code"], refused["unlocked"]) == (
        "stop_would_trigger",
        3006,
        "0.01000000",
    )
    [bad_list] = by_input["8"]
    assert (bad_list["op"], bad_list["reason"]) == ("place_list", "invalid_order_list")
    assert [e["kind"] for e in by_input["9"]] == [
        "order_accepted",
        "trade",
        "order_done",
        "order_done",
    ]
    triggered = by_input["11"][3:]
    assert [e["kind"] for e in triggered] == ["order_triggered", "trade", "order_done"]
    assert (triggered[0]["stop_price"], triggered[0]["last_price"]) == ("29999.99", "29999.99")
    assert (triggered[1]["price"], triggered[1]["qty"]) == ("29999.99", "0.0100")
    assert (triggered[2]["status"], triggered[2]["filled_qty"]) == ("filled", "0.0100")
    assert final["balances"]["alice"]["BTC"] == {"free": "0.95500000", "locked": "0.02000000"}
    assert final["book"] == {"bids": [["29999.99", "0.0050"]], "asks": [["31000.00", "0.0200"]]}
