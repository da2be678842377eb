"""Stop orders and OCO lists from request to command and lock, with no stack: what the api
refuses by the request alone, what it locks (ledger.locks's rule), and which reply answers
which waiter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from api.errors import ApiError
from api.models import OrderIn, OrderListIn, OrderOut
from api.replies import wait_key_of
from api.services.list_plans import leg_ids, list_status, placed_list, plan_list
from api.services.order_plans import placed_order, plan
from xch.market import Market
from xch.schemas import Event, OrderAccepted, OrderRejected, OrderTriggered, PlaceList

ROOT = Path(__file__).resolve().parents[2]
RULES = Market.model_validate(
    yaml.safe_load((ROOT / "examples" / "markets" / "btc-usd.yaml").read_text())
).rules()
# btc-usd: tick 0.01, lot 0.0001; one tick x one lot is one micro-USD; a lot is 10,000 satoshi.


def order(**fields: Any) -> OrderIn:
    return OrderIn.model_validate({"market": "btc-usd", **fields})


def refusal(body: OrderIn) -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        plan(RULES, body, "7", "btc-usd.01", None)
    return caught.value.status, caught.value.code


def test_stop_orders_lock_as_the_order_they_become() -> None:
    cases = [
        # stop-limit buy: price x quantity
        (dict(side="buy", type="stop_loss_limit", stop_price="31000.00", price="31050.00",
              quantity="0.0100"), 310_500_000, "USD"),
        # stop-market buy by quantity: quantity x stop price + 5 %
        (dict(side="buy", type="stop_loss", stop_price="31000.00", quantity="0.0100"),
         325_500_000, "USD"),
        # stop-market buy by quote amount: that amount
        (dict(side="buy", type="take_profit", stop_price="29000.00", quote_quantity="250"),
         250_000_000, "USD"),
        # any sell: its quantity
        (dict(side="sell", type="take_profit_limit", stop_price="32000.00", price="31990.00",
              quantity="0.0100", tif="POST_ONLY"), 1_000_000, "BTC"),
        (dict(side="sell", type="stop_loss", stop_price="29000.00", quantity="0.0100",
              tif="IOC"), 1_000_000, "BTC"),
    ]  # fmt: skip
    for fields, lock, asset in cases:
        planned = plan(RULES, order(**fields), "7", "btc-usd.01", None)
        assert (planned.lock, planned.asset, planned.command.locked) == (lock, asset, lock)
        assert planned.command.stop_price == RULES.price_to_ticks(str(fields["stop_price"]))
        assert planned.command.type == fields["type"]


def test_stop_orders_are_refused_as_the_engine_would() -> None:
    stop_limit = dict(side="buy", type="stop_loss_limit", price="100.00", quantity="0.0100")
    cases: list[tuple[dict[str, str | None], str]] = [
        (dict(stop_limit), "invalid_stop_price"),  # no stop price
        (dict(stop_limit, stop_price="100.001"), "invalid_stop_price"),  # off the tick grid
        (dict(stop_limit, stop_price="0"), "invalid_stop_price"),
        (dict(side="buy", type="limit", price="100.00", quantity="0.0100", stop_price="99.00"),
         "invalid_stop_price"),  # a limit order has no stop price
        (dict(side="buy", type="market", quantity="0.0100", stop_price="99.00"),
         "invalid_stop_price"),
        (dict(stop_limit, stop_price="99.00", price=None), "invalid_command"),
        (dict(stop_limit, stop_price="99.00", price="0.01"), "below_min_notional"),
        (dict(side="buy", type="stop_loss", stop_price="99.00", price="100.00",
              quantity="0.0100"), "invalid_command"),  # a stop-market has no price
        (dict(side="buy", type="stop_loss", stop_price="99.00", quantity="0.0100",
              tif="POST_ONLY"), "invalid_command"),
        (dict(side="sell", type="take_profit", stop_price="99.00", quote_quantity="5"),
         "invalid_command"),
        (dict(side="buy", type="take_profit", stop_price="99.00", quote_quantity="0.5"),
         "below_min_notional"),
        (dict(side="sell", type="stop_loss", stop_price="99.00", quantity="900000000000000"),
         "amount_too_large"),
        # a stop-market by quantity: its minimum notional at the stop price
        (dict(side="sell", type="stop_loss", stop_price="99.00", quantity="0.0100"),
         "below_min_notional"),
    ]  # fmt: skip
    for fields, code in cases:
        body = order(**{k: v for k, v in fields.items() if v is not None})
        assert refusal(body) == (400, code), fields


def oco(side: str, above: dict[str, str], below: dict[str, str], **extra: str) -> OrderListIn:
    return OrderListIn.model_validate(
        {"market": "btc-usd", "side": side, "quantity": "0.0100", "above": above,
         "below": below, **extra}
    )  # fmt: skip


def test_an_oco_sell_is_one_command_locking_its_quantity_once() -> None:
    body = oco(
        "sell",
        {"type": "limit_maker", "price": "32000.00"},
        {"type": "stop_loss_limit", "stop_price": "29000.00", "price": "28900.00"},
        client_list_id="exit-1",
    )
    planned = plan_list(RULES, body, "7", "btc-usd.00000000000000aa")
    command = planned.command
    assert isinstance(command, PlaceList)
    assert (planned.asset, planned.lock, command.locked) == ("BTC", 1_000_000, 1_000_000)
    assert (command.list_id, command.user, command.client_list_id) == (
        "btc-usd.00000000000000aa", "7", "exit-1"
    )  # fmt: skip
    above, below = command.legs
    assert [leg.order_id for leg in command.legs] == list(leg_ids(command.list_id))
    assert (above.type, above.tif, above.price, above.stop_price, above.locked) == (
        "limit", "POST_ONLY", 3_200_000, 0, 0
    )  # fmt: skip
    assert (below.type, below.tif, below.price, below.stop_price, below.locked) == (
        "stop_loss_limit", "GTC", 2_890_000, 2_900_000, 0
    )  # fmt: skip
    assert above.qty == below.qty == 100 and above.side == below.side == "sell"


def test_an_oco_buy_locks_the_larger_of_its_legs() -> None:
    # Above: a stop-market buy (0.01 x 31,000 + 5 % = 325.5 USD); below: a limit maker at
    # 29,000 (290 USD). The list locks 325.5 USD.
    body = oco(
        "buy",
        {"type": "stop_loss", "stop_price": "31000.00"},
        {"type": "limit_maker", "price": "29000.00"},
    )
    planned = plan_list(RULES, body, "7", "btc-usd.00000000000000ab")
    assert (planned.asset, planned.lock) == ("USD", 325_500_000)


def test_oco_lists_follow_binances_rules() -> None:
    maker = {"type": "limit_maker", "price": "32000.00"}
    stop = {"type": "stop_loss", "stop_price": "29000.00"}
    cases = [
        (oco("sell", stop, maker), "invalid_order_list"),  # a sell's stop-loss is below
        (oco("buy", maker, stop), "invalid_order_list"),  # a buy's limit maker is below
        (oco("sell", {"type": "take_profit", "stop_price": "28000.00"}, stop),
         "invalid_order_list"),  # above must work above below
        (oco("sell", {**maker, "tif": "GTC"}, stop), "invalid_order_list"),
        (oco("sell", maker, {**stop, "tif": "IOC"}), "invalid_order_list"),
        (oco("sell", maker, {"type": "stop_loss"}), "invalid_stop_price"),
        (oco("sell", {**maker, "stop_price": "31000.00"}, stop), "invalid_stop_price"),
        (oco("sell", {"type": "limit_maker"}, stop), "invalid_command"),
        (oco("sell", maker, {**stop, "price": "28000.00"}), "invalid_command"),
        (oco("sell", maker, stop, quantity="0.00001"), "invalid_qty"),
        (oco("buy", {"type": "stop_loss", "stop_price": "0.02"},
             {"type": "limit_maker", "price": "0.01"}), "below_min_notional"),
    ]  # fmt: skip
    for body, code in cases:
        with pytest.raises(ApiError) as caught:
            plan_list(RULES, body, "7", "btc-usd.00000000000000ac")
        assert (caught.value.status, caught.value.code) == (400, code), body


def accepted(order_id: str, **fields: Any) -> OrderAccepted:
    defaults: dict[str, Any] = dict(
        user="7", side="sell", type="stop_loss", tif="GTC", stp="EXPIRE_MAKER", price=0,
        qty=100, quote_qty=0, locked=0, stop_price=2_900_000,
    )  # fmt: skip
    return OrderAccepted("btc-usd", 1, "1-0", 1_700_000_000_000, order_id, **(defaults | fields))


def test_a_stop_waits_until_triggered() -> None:
    waiting = placed_order(RULES, "btc-usd.01", [accepted("btc-usd.01", locked=1_000_000)])
    assert (waiting.status, waiting.stop_price, waiting.triggered_at) == (
        "waiting", "29000.00", None
    )  # fmt: skip
    trigger = OrderTriggered("btc-usd", 2, "2-0", 1_700_000_000_005, "btc-usd.01", "7", "sell",
                             2_900_000, 2_899_000)  # fmt: skip
    working = placed_order(RULES, "btc-usd.01", [accepted("btc-usd.01"), trigger])
    assert (working.status, working.triggered_at) == ("new", 1_700_000_000_005)


def test_a_placed_list_and_its_status() -> None:
    body = oco(
        "sell",
        {"type": "take_profit_limit", "stop_price": "32000.00", "price": "31990.00"},
        {"type": "stop_loss", "stop_price": "29000.00"},
    )
    command = plan_list(RULES, body, "7", "btc-usd.00000000000000ad").command
    above_id, below_id = leg_ids(command.list_id)
    events: list[Event] = [
        accepted(above_id, type="take_profit_limit", price=3_199_000, stop_price=3_200_000,
                 locked=1_000_000, list_id=command.list_id),
        accepted(below_id, list_id=command.list_id),
    ]  # fmt: skip
    placed = placed_list(RULES, command, events)
    assert (placed.list_id, placed.status, placed.side, placed.quantity) == (
        command.list_id, "open", "sell", "0.0100"
    )  # fmt: skip
    assert (placed.above.order_id, placed.above.status, placed.above.list_id) == (
        above_id, "waiting", command.list_id
    )  # fmt: skip
    assert (placed.below.order_id, placed.below.stop_price) == (below_id, "29000.00")
    assert wait_key_of(events) == ("place_list", above_id)

    refused: list[Event] = [
        OrderRejected("btc-usd", 1, "1-0", 0, leg, "7", "sell", "place_list", 3006,
                      "stop_would_trigger", unlocked)
        for leg, unlocked in ((above_id, 1_000_000), (below_id, 0))
    ]  # fmt: skip
    assert wait_key_of(refused) == ("place_list", above_id)
    with pytest.raises(ApiError) as caught:
        placed_list(RULES, command, refused)
    assert (caught.value.status, caught.value.code) == (409, "stop_would_trigger")


def test_list_status_follows_its_legs() -> None:
    def leg(status: str) -> OrderOut:
        return OrderOut(order_id="btc-usd.1", market="btc-usd", side="sell", status=status)

    assert list_status(leg("new"), leg("waiting")) == "open"
    assert list_status(leg("partially_filled"), leg("expired")) == "executing"
    assert list_status(leg("filled"), leg("expired")) == "done"
    assert list_status(leg("canceled"), leg("canceled")) == "done"
    assert list_status(leg("pending"), leg("pending")) == "pending"
