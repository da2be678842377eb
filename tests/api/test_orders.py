"""Orders through the real stack: api process, engine processes, Redis, PostgreSQL."""

from __future__ import annotations

import httpx

from tests.api.stack import funded


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
