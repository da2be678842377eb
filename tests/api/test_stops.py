"""Stop orders and OCO lists through the real stack: api process, engine processes, Redis,
dbproc and PostgreSQL. Every test sets the last trade price itself (`trade_at`) and leaves
nothing of its own resting on the book, so the tests of this module do not meet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from tests.harness.api import Trader, funded, limit
from tests.harness.stacks import Stack

STOP_TYPES = ("stop_loss", "stop_loss_limit", "take_profit", "take_profit_limit")


async def placed(trader: Trader, order: Mapping[str, Any]) -> dict[str, Any]:
    response = await trader.place(**order)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def trade_at(http: httpx.AsyncClient, price: str, market: str = "btc-usd") -> None:
    """Make `price` the market's last trade price: one lot between two new users."""
    maker = await funded(http, BTC="1", ETH="1")
    taker = await funded(http, USD="100000")
    await placed(maker, limit("sell", price, "0.0001", market=market))
    bought = await placed(taker, limit("buy", price, "0.0001", market=market, tif="IOC"))
    assert [f["price"] for f in bought["fills"]] == [price], bought


def stop(side: str, order_type: str, stop_price: str, **fields: str) -> dict[str, str]:
    return {"market": "btc-usd", "side": side, "type": order_type, "stop_price": stop_price,
            **fields}  # fmt: skip


async def test_a_stop_loss_sell_waits_then_triggers_and_sells(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    await trade_at(http, "30000.00")
    seller = await funded(http, BTC="1")
    order = await placed(seller, stop("sell", "stop_loss", "29000.00", quantity="0.0100"))
    assert (order["status"], order["type"], order["stop_price"], order["triggered_at"]) == (
        "waiting", "stop_loss", "29000.00", None
    )  # fmt: skip
    assert await seller.balances() == {"BTC": ("0.99000000", "0.01000000")}

    # A bid at 28,990.00, and a trade there: the last price falls to the stop, which sells
    # into the rest of that bid within the same input.
    bidder = await funded(http, USD="1000")
    bid = await placed(bidder, limit("buy", "28990.00", "0.0200"))
    await trade_at_bid(http, "28990.00")
    await stack.stored("btc-usd")
    stored = (await seller.get(f"/api/v1/order/{order['order_id']}")).json()
    assert (stored["status"], stored["filled_quantity"], stored["stop_price"]) == (
        "filled", "0.0100", "29000.00"
    )  # fmt: skip
    assert stored["triggered_at"] is not None
    assert [(f["price"], f["liquidity"]) for f in stored["fills"]] == [("28990.00", "taker")]
    # 289.90 USD less the 0.2 % taker fee.
    assert await seller.balances() == {
        "BTC": ("0.99000000", "0.00000000"),
        "USD": ("289.320200", "0.000000"),
    }
    rest = await bidder.delete(f"/api/v1/order/{bid['order_id']}")
    assert rest.status_code == 200 and rest.json()["filled_quantity"] == "0.0101"


async def trade_at_bid(http: httpx.AsyncClient, price: str) -> None:
    """A trade at `price` against a resting bid there: one lot sold into it."""
    seller = await funded(http, BTC="1")
    sold = await placed(seller, limit("sell", price, "0.0001", tif="IOC"))
    assert [f["price"] for f in sold["fills"]] == [price], sold


async def test_a_stop_limit_buy_triggers_on_the_rise_and_buys_as_a_limit_order(
    http: httpx.AsyncClient,
) -> None:
    await trade_at(http, "30000.00")
    buyer = await funded(http, USD="1000")
    order = await placed(
        buyer,
        stop("buy", "stop_loss_limit", "30100.00", price="30150.00", quantity="0.0100"),
    )
    assert order["status"] == "waiting" and order["price"] == "30150.00"
    assert await buyer.balances() == {"USD": ("698.500000", "301.500000")}

    asker = await funded(http, BTC="1")
    ask = await placed(asker, limit("sell", "30120.00", "0.0100"))
    await trade_at(http, "30100.00")  # the last price rises to the stop
    # The triggered limit buy took the ask at 30,120.00: 301.20 USD, the 0.30 below its
    # limit back at once, 0.01 BTC less the 0.2 % taker fee.
    assert await buyer.balances() == {
        "BTC": ("0.00998000", "0.00000000"),
        "USD": ("698.800000", "0.000000"),
    }
    assert (await asker.delete(f"/api/v1/order/{ask['order_id']}")).status_code == 404


async def test_stops_that_would_trigger_at_once_and_cancels(http: httpx.AsyncClient) -> None:
    await trade_at(http, "30000.00")
    trader = await funded(http, BTC="1", USD="1000")
    # A sell stop-loss at or above the last price, a buy take-profit at or above it: reached.
    for order in (
        stop("sell", "stop_loss", "30000.00", quantity="0.0100"),
        stop("buy", "take_profit_limit", "30500.00", price="30500.00", quantity="0.0100"),
        stop("buy", "stop_loss", "29000.00", quote_quantity="100"),
    ):
        refused = await trader.place(**order)
        assert refused.status_code == 409, (order, refused.text)
        assert refused.json()["code"] == "stop_would_trigger"
    assert await trader.balances() == {
        "BTC": ("1.00000000", "0.00000000"),
        "USD": ("1000.000000", "0.000000"),
    }
    waiting = await placed(trader, stop("buy", "take_profit", "29000.00", quote_quantity="100"))
    assert waiting["status"] == "waiting" and waiting["quote_quantity"] == "100.000000"
    assert (await trader.balances())["USD"] == ("900.000000", "100.000000")
    canceled = await trader.delete(f"/api/v1/order/{waiting['order_id']}")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert (await trader.balances())["USD"] == ("1000.000000", "0.000000")


async def test_bad_stop_orders_are_refused_and_change_nothing(http: httpx.AsyncClient) -> None:
    trader = await funded(http, USD="100", BTC="1")
    before = await trader.balances()
    cases: list[tuple[Mapping[str, object], int, str]] = [
        (stop("sell", "stop_loss", "29000.001", quantity="0.0100"), 400, "invalid_stop_price"),
        (stop("sell", "stop_loss", "0", quantity="0.0100"), 400, "invalid_stop_price"),
        ({"market": "btc-usd", "side": "sell", "type": "stop_loss", "quantity": "0.0100"},
         400, "invalid_stop_price"),
        ({**limit("sell", "30000.00", "0.0100"), "stop_price": "29000.00"}, 400,
         "invalid_stop_price"),
        (stop("sell", "stop_loss_limit", "29000.00", quantity="0.0100"), 400,
         "invalid_command"),
        (stop("sell", "stop_loss", "29000.00", price="29000.00", quantity="0.0100"), 400,
         "invalid_command"),
        (stop("buy", "stop_loss", "31000.00", quantity="0.0100", tif="POST_ONLY"), 400,
         "invalid_command"),
        (stop("buy", "stop_loss_limit", "31000.00", price="31000.00", quantity="0.0100"), 400,
         "insufficient_funds"),
        (stop("buy", "stop_loss_limit", "31000.00", price="0.01", quantity="0.0100"), 400,
         "below_min_notional"),
        (stop("sell", "stop_loss", "29000.00", quantity="0.0100", market="sol-usd"), 409,
         "market_halted"),
        (stop("sell", "trailing_stop", "29000.00", quantity="0.0100"), 422, "invalid_request"),
        (stop("sell", "stop_loss", "2.9e4", quantity="0.0100"), 422, "invalid_request"),
    ]  # fmt: skip
    for body, status, code in cases:
        response = await trader.place(**body)
        assert (response.status_code, response.json()["code"]) == (status, code), body
    assert await trader.balances() == before


def oco(side: str, above: dict[str, str], below: dict[str, str], **extra: str) -> dict[str, Any]:
    return {"market": "btc-usd", "side": side, "quantity": "0.0100", "above": above,
            "below": below, **extra}  # fmt: skip


SELL_OCO = oco(
    "sell",
    {"type": "limit_maker", "price": "31000.00"},
    {"type": "stop_loss_limit", "stop_price": "29000.00", "price": "28900.00"},
)


async def place_list(trader: Trader, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    response = await trader.post("/api/v1/order-lists", body)
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_an_oco_sell_locks_once_and_a_partial_fill_expires_the_stop(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    await trade_at(http, "30000.00")
    seller = await funded(http, BTC="1")
    placed_list = await place_list(seller, SELL_OCO)
    list_id = placed_list["list_id"]
    above, below = placed_list["above"], placed_list["below"]
    assert (placed_list["status"], placed_list["side"], placed_list["quantity"]) == (
        "open", "sell", "0.0100"
    )  # fmt: skip
    assert (above["order_id"], above["status"], above["tif"], above["list_id"]) == (
        f"{list_id}0", "new", "POST_ONLY", list_id
    )  # fmt: skip
    assert (below["order_id"], below["status"], below["stop_price"], below["price"]) == (
        f"{list_id}1", "waiting", "29000.00", "28900.00"
    )  # fmt: skip
    # Both legs share one lock: the quantity, once.
    assert await seller.balances() == {"BTC": ("0.99000000", "0.01000000")}
    await stack.stored("btc-usd")
    stored = await seller.get(f"/api/v1/order-lists/{list_id}")
    assert stored.status_code == 200, stored.text
    assert stored.json()["status"] == "open"
    assert (stored.json()["above"]["order_id"], stored.json()["below"]["status"]) == (
        f"{list_id}0", "waiting"
    )  # fmt: skip
    assert [o["list_id"] for o in (await seller.get("/api/v1/order-lists/open")).json()] == [
        list_id
    ]

    # A buyer takes part of the limit maker: the stop-loss leg expires (oco).
    buyer = await funded(http, USD="1000")
    await placed(buyer, limit("buy", "31000.00", "0.0040", tif="IOC"))
    await stack.stored("btc-usd")
    executing = (await seller.get(f"/api/v1/order-lists/{list_id}")).json()
    assert executing["status"] == "executing"
    assert (executing["above"]["status"], executing["above"]["filled_quantity"]) == (
        "partially_filled", "0.0040"
    )  # fmt: skip
    assert (executing["below"]["status"], executing["below"]["reason"]) == ("expired", "oco")

    canceled = await seller.delete(f"/api/v1/order-lists/{list_id}")
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    assert [(o["order_id"], o["status"]) for o in canceled.json()["orders"]] == [
        (f"{list_id}0", "canceled")
    ]
    assert (await seller.balances())["BTC"] == ("0.99600000", "0.00000000")
    await stack.stored("btc-usd")
    assert (await seller.get(f"/api/v1/order-lists/{list_id}")).json()["status"] == "done"
    assert (await seller.get("/api/v1/order-lists/open")).json() == []
    again = await seller.delete(f"/api/v1/order-lists/{list_id}")
    assert again.status_code == 404 and again.json()["code"] == "unknown_order"


async def test_an_oco_buy_trigger_expires_its_limit_leg(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    await trade_at(http, "30000.00")
    buyer = await funded(http, USD="1000")
    body = oco(
        "buy",
        {"type": "stop_loss", "stop_price": "30100.00"},
        {"type": "limit_maker", "price": "29000.00"},
    )
    placed_list = await place_list(buyer, body)
    # The larger of the legs' locks: 0.01 x 30,100.00 + 5 % = 316.05 USD (the limit maker
    # would lock 290.00).
    assert await buyer.balances() == {"USD": ("683.950000", "316.050000")}
    asker = await funded(http, BTC="1")
    ask = await placed(asker, limit("sell", "30120.00", "0.0100"))
    await trade_at(http, "30100.00")
    await stack.stored("btc-usd")
    done = (await buyer.get(f"/api/v1/order-lists/{placed_list['list_id']}")).json()
    assert done["status"] == "done"
    assert (done["above"]["status"], done["above"]["filled_quantity"]) == ("filled", "0.0100")
    assert done["above"]["triggered_at"] is not None
    assert (done["below"]["status"], done["below"]["reason"]) == ("expired", "oco")
    # Paid 301.20 USD; the rest of the list's lock is free again.
    assert await buyer.balances() == {
        "BTC": ("0.00998000", "0.00000000"),
        "USD": ("698.800000", "0.000000"),
    }
    assert (await asker.delete(f"/api/v1/order/{ask['order_id']}")).status_code == 404


async def test_canceling_either_leg_cancels_the_list(http: httpx.AsyncClient) -> None:
    await trade_at(http, "30000.00")
    seller = await funded(http, BTC="1")
    for leg in (0, 1):
        placed_list = await place_list(seller, SELL_OCO)
        order_id = placed_list[("above", "below")[leg]]["order_id"]
        canceled = await seller.delete(f"/api/v1/order/{order_id}")
        assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
        assert await seller.balances() == {"BTC": ("1.00000000", "0.00000000")}
        gone = await seller.delete(f"/api/v1/order-lists/{placed_list['list_id']}")
        assert gone.status_code == 404, gone.text


async def test_client_list_id_places_once(http: httpx.AsyncClient, stack: Stack) -> None:
    await trade_at(http, "30000.00")
    seller = await funded(http, BTC="1")
    body = {**SELL_OCO, "client_list_id": "exit-1"}
    first, second = await place_list(seller, body), await place_list(seller, body)
    assert first == second and first["client_list_id"] == "exit-1"
    assert await seller.balances() == {"BTC": ("0.99000000", "0.01000000")}
    await stack.stored("btc-usd")
    stored = (await seller.get(f"/api/v1/order-lists/{first['list_id']}")).json()
    assert stored["client_list_id"] == "exit-1"
    [open_list] = (await seller.get("/api/v1/order-lists/open")).json()
    assert open_list["client_list_id"] == "exit-1"
    assert (await seller.delete(f"/api/v1/order-lists/{first['list_id']}")).status_code == 200


async def test_bad_lists_are_refused_and_change_nothing(http: httpx.AsyncClient) -> None:
    await trade_at(http, "30000.00")
    trader = await funded(http, BTC="1", USD="100")
    before = await trader.balances()
    maker = {"type": "limit_maker", "price": "31000.00"}
    loss = {"type": "stop_loss", "stop_price": "29000.00"}
    cases: list[tuple[dict[str, Any], int, str]] = [
        (oco("sell", loss, maker), 400, "invalid_order_list"),
        (oco("buy", maker, loss), 400, "invalid_order_list"),
        (oco("sell", {"type": "take_profit", "stop_price": "28000.00"}, loss), 400,
         "invalid_order_list"),
        (oco("sell", {**maker, "tif": "GTC"}, loss), 400, "invalid_order_list"),
        (oco("sell", maker, {**loss, "stop_price": "29000.005"}), 400, "invalid_stop_price"),
        (oco("sell", maker, loss, quantity="2"), 400, "insufficient_funds"),
        (oco("sell", maker, loss, market="sol-usd"), 409, "market_halted"),
        (oco("sell", maker, loss, market="doge-usd"), 404, "unknown_market"),
        # The engine's refusals: a limit maker that would cross, a stop already reached.
        (oco("sell", {"type": "limit_maker", "price": "29500.00"}, loss), 409,
         "post_only_would_cross"),
        (oco("sell", maker, {"type": "stop_loss", "stop_price": "30000.00"}), 409,
         "stop_would_trigger"),
        (oco("sell", {"type": "market"}, loss), 422, "invalid_request"),
        ({**oco("sell", maker, loss), "legs": []}, 422, "invalid_request"),
    ]  # fmt: skip
    bidder = await funded(http, USD="1000")
    bid = await placed(bidder, limit("buy", "29600.00", "0.0100"))
    for body, status, code in cases:
        response = await trader.post("/api/v1/order-lists", body)
        assert (response.status_code, response.json()["code"]) == (status, code), body
    assert await trader.balances() == before
    assert (await trader.get("/api/v1/order-lists/btc-usd.00ff")).status_code == 404
    assert (await trader.delete("/api/v1/order-lists/btc-usd.00ff")).status_code == 404
    assert (await trader.get("/api/v1/order-lists/nothing")).status_code == 422
    assert (await bidder.delete(f"/api/v1/order/{bid['order_id']}")).status_code == 200


async def test_another_users_list_is_unknown(http: httpx.AsyncClient, stack: Stack) -> None:
    await trade_at(http, "30000.00")
    owner = await funded(http, BTC="1")
    other = await funded(http, BTC="1")
    placed_list = await place_list(owner, SELL_OCO)
    await stack.stored("btc-usd")
    path = f"/api/v1/order-lists/{placed_list['list_id']}"
    assert (await other.get(path)).status_code == 404
    assert (await other.delete(path)).status_code == 404
    assert (await owner.delete(path)).status_code == 200


async def test_a_list_is_pending_when_the_engine_does_not_answer(http: httpx.AsyncClient) -> None:
    """ada-usd has no engine running: the list waits in its input with its one lock."""
    seller = await funded(http, ADA="1")
    body = {**SELL_OCO, "market": "ada-usd", "client_list_id": "slow-list"}
    first = await place_list(seller, body, status=202)
    assert (first["status"], first["above"]["status"], first["below"]["status"]) == (
        "pending", "pending", "pending"
    )  # fmt: skip
    assert first["above"]["order_id"] == f"{first['list_id']}0"
    second = await place_list(seller, body, status=202)
    assert second["list_id"] == first["list_id"]
    assert await seller.balances() == {"ADA": ("0.99000000", "0.01000000")}
