"""GET /api/v1/portfolio and /portfolio/history against the real stack: fills stored by dbproc,
balances in Redis, the ticker dbproc keeps, klines."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from tests.harness.api import Trader, funded, limit
from tests.harness.stacks import Stack


async def _eventually(trader: Trader, path: str, done: Any, **params: Any) -> dict[str, Any]:
    """The body of GET `path` once `done(body)` holds (dbproc stores and tickers lag)."""
    deadline = time.monotonic() + 15
    while True:
        response = await trader.get(path, **params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if done(body) or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.2)


async def test_positions_and_pnl_after_a_buy_and_a_partial_close(
    http: httpx.AsyncClient, stack: Stack
) -> None:
    maker = await funded(http, BTC="2", USD="100000")
    trader = await funded(http, USD="100000")
    # 1. The trader takes 1 BTC at 30000 (taker fee 20 bps in base: 0.002 BTC): holds
    #    0.998 BTC for 30000 USD.
    assert (await maker.place(**limit("sell", "30000.00", "1.0000"))).status_code == 200
    bought = await trader.place(**limit("buy", "30000.00", "1.0000"))
    assert bought.json()["status"] == "filled", bought.text
    # 2. It sells 0.5 BTC into a bid at 33000 (taker fee 20 bps in quote: 33 USD): proceeds
    #    16467; cost removed 30000 * 0.5 / 0.998 = 15030.060120(24) -> 15030.060120;
    #    realized 16467 - 15030.060120 = 1436.939880; left 0.498 BTC costing 14969.939880.
    assert (await maker.place(**limit("buy", "33000.00", "0.5000"))).status_code == 200
    sold = await trader.place(**limit("sell", "33000.00", "0.5000"))
    assert sold.json()["status"] == "filled", sold.text
    await stack.stored("btc-usd")

    body = await _eventually(
        trader,
        "/api/v1/portfolio",
        lambda b: b["positions"] and b["positions"][0]["last_price"] == "33000.00",
    )
    # At the last price 33000 the 0.498 BTC are worth 16434: unrealized
    # 16434 - 14969.939880 = 1464.060120. USD: 100000 - 30000 + 16467 = 86467.
    assert body["positions"] == [
        {
            "market": "btc-usd",
            "base": "BTC",
            "quote": "USD",
            "position": "0.49800000",
            "cost_basis": "14969.939880",
            "average_cost": "30060.120240",
            "realized_pnl": "1436.939880",
            "unrealized_pnl": "1464.060120",
            "last_price": "33000.00",
            "fees_base": "0.00200000",
            "fees_quote": "33.000000",
            "fills": 2,
        }
    ]
    assert body["balances"] == [
        {
            "asset": "BTC",
            "free": "0.49800000",
            "locked": "0.00000000",
            "total": "0.49800000",
            "values": {"USD": "16434.000000"},
        },
        {
            "asset": "USD",
            "free": "86467.000000",
            "locked": "0.000000",
            "total": "86467.000000",
            "values": {"USD": "86467.000000"},
        },
    ]
    assert body["totals"] == [
        {
            "asset": "USD",
            "value": "102901.000000",
            "realized_pnl": "1436.939880",
            "unrealized_pnl": "1464.060120",
        }
    ]
    only_eth = await trader.get("/api/v1/portfolio", market="eth-usd")
    assert only_eth.status_code == 200 and only_eth.json()["positions"] == []

    # Over time: the faucet's 100000 USD came in the window, so the P&L at the end is the
    # value less that: 102901 - 100000 = 2901 = realized + unrealized.
    history = await _eventually(
        trader,
        "/api/v1/portfolio/history",
        lambda b: b["points"][-1]["value"] == "102901.000000",
        interval="1m",
        limit=10,
    )
    assert (history["quote"], history["interval"], history["unpriced"]) == ("USD", "1m", [])
    assert len(history["points"]) == 10
    assert history["points"][-1]["value"] == "102901.000000"
    assert history["points"][-1]["net_transfers"] == "100000.000000"
    assert history["points"][-1]["pnl"] == "2901.000000"
    times = [point["time"] for point in history["points"]]
    assert times == sorted(times) and times[1] - times[0] == 60_000
    # The maker: sold 1 BTC it never bought (a negative position), bought back 0.5.
    maker_view = (await maker.get("/api/v1/portfolio")).json()
    assert maker_view["positions"][0]["position"] == "-0.50050000"


async def test_portfolio_errors(http: httpx.AsyncClient) -> None:
    anonymous = await http.get("/api/v1/portfolio")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthorized" and anonymous.json()["message"]
    assert (await http.get("/api/v1/portfolio/history")).status_code == 401

    trader = await funded(http, USD="10", BTC="1")
    for path, params, status, code in [
        ("/api/v1/portfolio", {"market": "doge-usd"}, 404, "unknown_market"),
        ("/api/v1/portfolio", {"market": "NOT A MARKET"}, 422, "invalid_request"),
        ("/api/v1/portfolio/history", {"interval": "1y"}, 422, "invalid_request"),
        ("/api/v1/portfolio/history", {"limit": "0"}, 422, "invalid_request"),
        ("/api/v1/portfolio/history", {"quote": "EUR"}, 400, "unknown_asset"),
        (
            "/api/v1/portfolio/history",
            {"interval": "9999w", "limit": "1000"},
            400,
            "unknown_interval",
        ),
        # BTC is held and btc-usd has no 2h klines to value it with.
        ("/api/v1/portfolio/history", {"interval": "2h"}, 400, "unknown_interval"),
    ]:
        response = await trader.get(path, **params)
        assert response.status_code == status, (path, params, response.text)
        assert response.json()["code"] == code and response.json()["message"]

    # No fills: balances only, valued where a price exists.
    fresh = (await trader.get("/api/v1/portfolio")).json()
    assert fresh["positions"] == []
    assert [b["asset"] for b in fresh["balances"]] == ["BTC", "USD"]


async def test_a_self_trade_is_two_fills(http: httpx.AsyncClient, stack: Stack) -> None:
    trader = await funded(http, ETH="1", USD="10000")
    rest = await trader.place(**limit("sell", "3000.00", "0.1000", market="eth-usd", stp="NONE"))
    assert rest.status_code == 200, rest.text
    cross = await trader.place(**limit("buy", "3000.00", "0.1000", market="eth-usd", stp="NONE"))
    assert cross.json()["status"] == "filled", cross.text
    await stack.stored("eth-usd")
    body = await _eventually(trader, "/api/v1/portfolio", lambda b: bool(b["positions"]))
    # Maker first: the sell of 0.1 ETH for 300 USD less 0.3 (10 bps) opens a short of
    # -10_000_000 costing -299_700_000. Then the taker buy: 0.1 less 0.0002 ETH (20 bps)
    # received for 300 USD closes 9_980_000 of it: cost removed
    # -299_700_000 * 9_980_000 / 10_000_000 = -299_100_600, realized
    # -300_000_000 + 299_100_600 = -899_400; left -20_000 (-0.0002 ETH) costing -599_400,
    # worth -600_000 at 3000: unrealized -600. Together -0.9 USD: the two fees.
    [position] = body["positions"]
    assert (position["position"], position["cost_basis"]) == ("-0.00020000", "-0.599400")
    assert (position["realized_pnl"], position["unrealized_pnl"]) == ("-0.899400", "-0.000600")
    assert (position["fees_base"], position["fees_quote"], position["fills"]) == (
        "0.00020000",
        "0.300000",
        2,
    )
