"""Orders through the real stack: api process, engine processes, Redis, PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx

from tests.harness.api import funded, limit


async def test_limit_orders_trade_partially_and_cancel(http: httpx.AsyncClient) -> None:
    seller = await funded(http, BTC="1")
    buyer = await funded(http, USD="10000")

    ask = await seller.place(
        market="btc-usd", side="sell", type="limit", price="30000.00", quantity="0.1000"
    )
    assert ask.status_code == 200, ask.text
    assert ask.json()["status"] == "new"
    assert await seller.balances() == {"BTC": ("0.90000000", "0.10000000")}

    bid = await buyer.place(
        market="btc-usd", side="buy", type="limit", price="30001.00", quantity="0.0400"
    )
    assert bid.status_code == 200, bid.text
    order = bid.json()
    assert order["status"] == "filled"
    assert order["filled_quantity"] == "0.0400"
    assert order["filled_quote"] == "1200.000000"
    [fill] = order["fills"]
    assert fill["price"] == "30000.00" and fill["liquidity"] == "taker"
    assert fill["fee_asset"] == "BTC" and fill["fee"] == "0.00008000"
    assert await buyer.balances() == {
        "BTC": ("0.03992000", "0.00000000"),
        "USD": ("8800.000000", "0.000000"),
    }

    canceled = await seller.delete(f"/api/v1/order/{ask.json()['order_id']}")
    assert canceled.status_code == 200, canceled.text
    assert canceled.json() == {
        "order_id": ask.json()["order_id"],
        "market": "btc-usd",
        "status": "canceled",
        "filled_quantity": "0.0400",
    }
    # 1200 USD less the 0.1 % maker fee; the unfilled 0.06 BTC is free again.
    assert await seller.balances() == {
        "BTC": ("0.96000000", "0.00000000"),
        "USD": ("1198.800000", "0.000000"),
    }


async def test_client_order_id_places_once(http: httpx.AsyncClient) -> None:
    trader = await funded(http, USD="1000")
    order = limit("buy", "100.00", "1.0000", client_order_id="my-order-1")
    first, second = await trader.place(**order), await trader.place(**order)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert await trader.balances() == {"USD": ("900.000000", "100.000000")}
    # Concurrent duplicates: still one order.
    order = limit("buy", "100.00", "1.0000", client_order_id="my-order-2")
    answers = await asyncio.gather(*(trader.place(**order) for _ in range(5)))
    assert len({a.json()["order_id"] for a in answers}) == 1
    assert await trader.balances() == {"USD": ("800.000000", "200.000000")}
    # Another user may use the same client order id.
    other = await funded(http, USD="1000")
    mine = await other.place(**order)
    assert mine.status_code == 200 and mine.json()["order_id"] != answers[0].json()["order_id"]


async def test_a_refused_order_leaves_its_client_order_id_free(http: httpx.AsyncClient) -> None:
    """The client id is claimed in the lock-and-enqueue step: an order refused for want of
    funds claims nothing, and the same id places once the funds are there."""
    trader = await funded(http, USD="10")
    order = limit("buy", "100.00", "1.0000", client_order_id="refused-then-placed")
    refused = await trader.place(**order)
    assert refused.status_code == 400, refused.text
    topped_up = await trader.post("/api/v1/faucet", {"asset": "USD", "amount": "1000"})
    assert topped_up.status_code == 200, topped_up.text
    placed = await trader.place(**order)
    assert placed.status_code == 200, placed.text
    assert await trader.balances() == {"USD": ("910.000000", "100.000000")}


async def test_refusals_change_nothing(http: httpx.AsyncClient) -> None:
    trader = await funded(http, USD="100", BTC="1")
    before = await trader.balances()
    cases: list[tuple[Mapping[str, object], int, str]] = [
        (limit("buy", "1000.00", "1.0000"), 400, "insufficient_funds"),
        (limit("buy", "100.001", "0.0100"), 400, "invalid_price"),
        (limit("buy", "100.00", "0.00001"), 400, "invalid_qty"),
        (limit("buy", "0", "0.0100"), 400, "invalid_price"),
        (limit("buy", "0.01", "0.0100"), 400, "below_min_notional"),
        (limit("sell", "10.00", "900000000000000"), 400, "amount_too_large"),
        ({**limit("buy", "100.00", "0.0100"), "quote_quantity": "1"}, 400, "invalid_command"),
        ({"market": "btc-usd", "side": "buy", "type": "market"}, 400, "invalid_command"),
        (
            {"market": "btc-usd", "side": "sell", "type": "market", "quote_quantity": "5"},
            400,
            "invalid_command",
        ),
        (
            {
                "market": "btc-usd",
                "side": "buy",
                "type": "market",
                "quantity": "1",
                "tif": "POST_ONLY",
            },
            400,
            "invalid_command",
        ),
        (limit("buy", "100.00", "0.0100", market="doge-usd"), 404, "unknown_market"),
        (limit("buy", "100.00", "0.0100", market="sol-usd"), 409, "market_halted"),
        ({**limit("buy", "100.00", "0.0100"), "side": "hold"}, 422, "invalid_request"),
        ({**limit("buy", "100.00", "0.0100"), "price": 100.0}, 422, "invalid_request"),
        ({**limit("buy", "100.00", "0.0100"), "price": "1e3"}, 422, "invalid_request"),
        ({**limit("buy", "100.00", "0.0100"), "tif": "GTD"}, 422, "invalid_request"),
        ({**limit("buy", "100.00", "0.0100"), "client_order_id": "x" * 40}, 422, "invalid_request"),
    ]
    for body, status, code in cases:
        response = await trader.place(**body)
        assert (response.status_code, response.json()["code"]) == (status, code), body
    assert await trader.balances() == before


async def test_engine_refusals_and_ownership(http: httpx.AsyncClient) -> None:
    maker = await funded(http, ETH="1")
    taker = await funded(http, USD="1000")
    ask = await maker.place(**limit("sell", "500.00", "0.0100", market="eth-usd"))
    assert ask.status_code == 200, ask.text
    order_id = ask.json()["order_id"]

    crossing = await taker.place(
        **limit("buy", "500.00", "0.0100", market="eth-usd", tif="POST_ONLY")
    )
    assert crossing.status_code == 409 and crossing.json()["code"] == "post_only_would_cross"
    unfillable = await taker.place(**limit("buy", "500.00", "1.0000", market="eth-usd", tif="FOK"))
    assert unfillable.status_code == 409 and unfillable.json()["code"] == "fok_unfillable"
    assert await taker.balances() == {"USD": ("1000.000000", "0.000000")}

    # Another user's order is as unknown as a missing one, to cancel or to read.
    for path in (f"/api/v1/order/{order_id}", "/api/v1/order/eth-usd.00ff"):
        response = await taker.delete(path)
        assert response.status_code == 404, (path, response.text)
    assert (await taker.delete("/api/v1/order/x")).status_code == 422
    assert (await taker.get(f"/api/v1/order/{order_id}")).status_code == 404
    assert await maker.balances() == {"ETH": ("0.99000000", "0.01000000")}
    done = await maker.delete(f"/api/v1/order/{order_id}")
    assert done.status_code == 200 and done.json()["status"] == "canceled"
    again = await maker.delete(f"/api/v1/order/{order_id}")
    assert again.status_code == 404 and again.json()["code"] == "unknown_order"


async def test_market_orders_and_quote(http: httpx.AsyncClient) -> None:
    maker = await funded(http, ETH="1")
    for price in ("100.00", "101.00"):
        placed = await maker.place(**limit("sell", price, "0.5000", market="eth-usd"))
        assert placed.status_code == 200
    taker = await funded(http, USD="1000")
    quote = await taker.post(
        "/api/v1/order/quote", {"market": "eth-usd", "side": "buy", "quantity": "0.7000"}
    )
    assert quote.status_code == 200, quote.text
    assert quote.json() == {
        "market": "eth-usd",
        "side": "buy",
        "quantity": "0.7000",
        "quote_quantity": "70.200000",
        "average_price": "100.28",
        "worst_price": "101.00",
        "complete": True,
    }
    bought = await taker.place(market="eth-usd", side="buy", type="market", quantity="0.7000")
    assert bought.status_code == 200, bought.text
    assert bought.json()["status"] == "filled"
    assert bought.json()["filled_quote"] == "70.200000"
    assert [f["price"] for f in bought.json()["fills"]] == ["100.00", "101.00"]
    # The budget locked from the depth was spent exactly; nothing stays locked.
    assert (await taker.balances())["USD"] == ("929.800000", "0.000000")

    by_quote = await taker.place(market="eth-usd", side="buy", type="market", quote_quantity="10.1")
    assert by_quote.status_code == 200, by_quote.text
    assert by_quote.json()["filled_quantity"] == "0.1000"
    assert (await taker.balances())["USD"] == ("919.700000", "0.000000")


async def test_pending_when_the_engine_does_not_answer(http: httpx.AsyncClient) -> None:
    """ada-usd has no engine running: the command waits in its input, funds stay locked, and
    the api says so (202) instead of failing or answering twice."""
    trader = await funded(http, USD="100")
    order = limit("buy", "10.00", "1.0000", market="ada-usd", client_order_id="slow-1")
    first = await trader.place(**order)
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "pending"
    second = await trader.place(**order)
    assert second.status_code == 202
    assert second.json()["order_id"] == first.json()["order_id"]
    assert await trader.balances() == {"USD": ("90.000000", "10.000000")}
