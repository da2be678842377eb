"""The hot routes (api.hot_routes) answer exactly as the framework does: an order, a malformed
one, a refusal, a cancel and a bot's reads, sent the hot way and the framework's way (a
browser's Origin takes the framework's path)."""

from __future__ import annotations

import asyncio
import json

import httpx

from api.config import Settings
from api.hot_routes import hot_routes
from api.main import create_app
from tests.harness.api import JWT_SECRET, SECRETS_KEY, Trader, funded, limit, signed_headers

ORIGIN = {"Origin": "http://127.0.0.1:5173"}  # an allowed origin: CORS answers, not the hot path
VOLATILE = ("order_id", "created_at")


def test_both_hot_routes_are_found() -> None:
    app = create_app(Settings(jwt_secret=JWT_SECRET, secrets_key=SECRETS_KEY))
    assert {(method, pattern.pattern) for method, pattern, _, _ in hot_routes(app)} == {
        ("POST", "^/api/v1/order$"),
        ("DELETE", "^/api/v1/order/(?P<order_id>[^/]+)$"),
        ("POST", "^/api/v3/order$"),
        ("GET", "^/api/v1/orders/open$"),
        ("GET", "^/api/v1/balances$"),
        ("GET", "^/api/v1/depth$"),
        ("GET", "^/api/v3/openOrders$"),
    }


async def _both(
    trader: Trader, body: bytes, content_type: str = "application/json"
) -> list[httpx.Response]:
    headers = {**trader.auth, "Content-Type": content_type}
    return [
        await trader.http.post("/api/v1/order", content=body, headers=headers | extra)
        for extra in ({}, ORIGIN)
    ]


def _stable(answer: httpx.Response) -> dict[str, object]:
    return {k: v for k, v in answer.json().items() if k not in VOLATILE}


async def test_an_order_is_answered_alike(http: httpx.AsyncClient) -> None:
    trader = await funded(http, USD="1000")
    hot, framework = await _both(trader, json.dumps(limit("buy", "100.00", "1.0000")).encode())
    assert hot.status_code == framework.status_code == 200, (hot.text, framework.text)
    assert _stable(hot) == _stable(framework)
    assert hot.headers["content-type"] == framework.headers["content-type"] == "application/json"
    assert "access-control-allow-origin" in framework.headers
    assert "access-control-allow-origin" not in hot.headers
    assert hot.headers["x-request-id"] and framework.headers["x-request-id"]


async def test_malformed_orders_are_answered_alike(http: httpx.AsyncClient) -> None:
    trader = await funded(http, USD="1000")
    for body, content_type, status in (
        (b'{"market": "btc-usd", "side": "buy"', "application/json", 422),  # not JSON
        (json.dumps(limit("buy", "-1", "1.0000")).encode(), "application/json", 422),
        (json.dumps(limit("buy", "100.00", "1.0000")).encode(), "text/plain", 422),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400),  # too deep to parse
    ):
        hot, framework = await _both(trader, body, content_type)
        assert hot.status_code == framework.status_code == status, (hot.text, framework.text)
        assert hot.json() == framework.json()
    assert await trader.balances() == {"USD": ("1000.000000", "0.000000")}


async def test_refusals_are_answered_alike(http: httpx.AsyncClient) -> None:
    trader = await funded(http, USD="10")
    hot, framework = await _both(trader, json.dumps(limit("buy", "100.00", "1.0000")).encode())
    assert hot.status_code == framework.status_code == 400
    assert hot.json() == framework.json()
    body = json.dumps(limit("buy", "1.00", "1.0000")).encode()
    stale = signed_headers("0" * 32, "secret", "POST", "/api/v1/order", body, timestamp=1)
    answers = [
        await http.post("/api/v1/order", content=body, headers=stale | extra)
        for extra in ({"Content-Type": "application/json"}, ORIGIN)
    ]
    assert [a.status_code for a in answers] == [401, 401]
    assert answers[0].json() == answers[1].json()
    assert answers[0].headers["www-authenticate"] == "Bearer"


async def test_cancels_are_answered_alike(http: httpx.AsyncClient) -> None:
    trader = await funded(http, USD="1000")
    placed = [(await trader.place(**limit("buy", "100.00", "1.0000"))).json() for _ in "ab"]
    hot, framework = [
        await trader.http.delete(f"/api/v1/order/{order['order_id']}", headers=trader.auth | extra)
        for order, extra in zip(placed, ({}, ORIGIN), strict=True)
    ]
    assert hot.status_code == framework.status_code == 200, (hot.text, framework.text)
    assert _stable(hot) == _stable(framework)
    assert hot.json()["status"] == "canceled"
    assert await trader.balances() == {"USD": ("1000.000000", "0.000000")}
    other = await funded(http, USD="1")
    for order_id in ("not-an-id", placed[0]["order_id"]):  # invalid; another user's
        answers = [
            await other.http.delete(f"/api/v1/order/{order_id}", headers=other.auth | extra)
            for extra in ({}, ORIGIN)
        ]
        assert answers[0].status_code == answers[1].status_code in (404, 422)
        assert answers[0].json() == answers[1].json()


async def test_binance_orders_take_the_hot_path_too(http: httpx.AsyncClient) -> None:
    unkeyed = [
        await http.post("/api/v3/order", content=b"symbol=BTCUSD", headers=extra)
        for extra in ({}, ORIGIN)
    ]
    assert [a.status_code for a in unkeyed] == [401, 401]
    assert unkeyed[0].json() == unkeyed[1].json()
    assert unkeyed[0].json()["code"] == -2015


async def _stored(trader: Trader, order_id: str) -> None:
    """Wait until dbproc has stored the order (reads come from its tables)."""
    for _ in range(100):
        listed = (await trader.get("/api/v1/orders/open")).json()
        if any(order["order_id"] == order_id for order in listed):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{order_id} was not stored")


async def test_reads_are_answered_alike(http: httpx.AsyncClient) -> None:
    trader = await funded(http, USD="1000")
    placed = (await trader.place(**limit("buy", "100.00", "1.0000"))).json()
    await _stored(trader, placed["order_id"])
    for path, query, status in (
        ("/api/v1/orders/open", {}, 200),
        ("/api/v1/orders/open", {"market": "btc-usd", "limit": "1"}, 200),
        ("/api/v1/orders/open", {"limit": "0"}, 422),
        ("/api/v1/orders/open", {"market": "no-such-market"}, 200),
        ("/api/v1/balances", {}, 200),
        ("/api/v1/depth", {"market": "btc-usd"}, 200),
        ("/api/v1/depth", {"market": "btc-usd", "limit": "1"}, 200),
        ("/api/v1/depth", {"market": "no-such-market"}, 404),
        ("/api/v1/depth", {}, 422),
    ):
        hot, framework = [
            await http.get(path, params=query, headers=trader.auth | extra)
            for extra in ({}, ORIGIN)
        ]
        assert hot.status_code == framework.status_code == status, (path, query, hot.text)
        assert hot.json() == framework.json()
        assert hot.headers["content-type"] == framework.headers["content-type"]
    for path in ("/api/v1/orders/open", "/api/v1/balances", "/api/v3/openOrders"):
        unauthenticated = [await http.get(path, headers=extra) for extra in ({}, ORIGIN)]
        assert unauthenticated[0].status_code == unauthenticated[1].status_code == 401
        assert unauthenticated[0].json() == unauthenticated[1].json()
    heads = [
        await http.head("/api/v1/depth?market=btc-usd", headers=extra) for extra in ({}, ORIGIN)
    ]
    assert heads[0].status_code == heads[1].status_code and not heads[0].content
