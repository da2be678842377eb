"""Binance's WebSocket API (`/ws-api/v3`) on the ws service, spoken by hand: signed user-data
subscriptions checked by the api (ws holds no API secret), the events wrapped with their
subscription id, and every refusal answered with Binance's error frame on a connection that
stays open."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest_asyncio
import redis.asyncio
from websockets.asyncio.client import ClientConnection, connect

from api.binance.routes.ws_api import PATH
from tests.binance.conftest import Account
from tests.binance.test_streams import Messages
from tests.harness.api import JWT_SECRET
from tests.harness.stacks import Stack
from tests.harness.ws import WsProcess
from xch.auth import WS_SERVICE, issue_token

Accounts = Callable[..., Account]


def signed(account: Account, secret: str | None = None, **extra: Any) -> dict[str, Any]:
    """`userDataStream.subscribe.signature`'s parameters as Binance's clients sign them."""
    params = {"apiKey": account.key, "timestamp": int(time.time() * 1000), **extra}
    payload = "&".join(
        f"{name}={str(value).lower() if isinstance(value, bool) else value}"
        for name, value in sorted(params.items())
    )
    key = (secret or account.secret).encode()
    return params | {"signature": hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()}


class WsApi(Messages):
    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        request_id = f"req-{len(self.received)}-{time.monotonic_ns()}"
        message: dict[str, Any] = {"id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        count = len(self.received)
        await self.connection.send(orjson.dumps(message))
        await self.until(lambda received: any(m.get("id") == request_id for m in received[count:]))
        return next(m for m in self.received[count:] if m.get("id") == request_id)


@pytest_asyncio.fixture
async def open_ws_api(ws_server: WsProcess) -> AsyncIterator[Callable[[], Any]]:
    opened: list[tuple[ClientConnection, WsApi]] = []

    async def open_() -> WsApi:
        url = f"ws://127.0.0.1:{ws_server.port}/ws-api/v3"
        connection = await connect(url, open_timeout=10)
        api = WsApi(connection)
        opened.append((connection, api))
        return api

    try:
        yield open_
    finally:
        for connection, api in opened:
            await connection.close()
            api.task.cancel()


def _events(received: list[Any], kind: str) -> list[dict[str, Any]]:
    return [
        m["event"]
        for m in received
        if isinstance(m, dict) and m.get("subscriptionId") == 0 and m["event"]["e"] == kind
    ]


async def test_signature_subscription_streams_the_user_data(
    accounts: Accounts, open_ws_api: Callable[[], Any]
) -> None:
    trader = accounts(USD="100")
    api = await open_ws_api()
    pong = await api.call("ping")
    assert {k: pong[k] for k in ("status", "result", "rateLimits")} == {
        "status": 200, "result": {}, "rateLimits": [],
    }  # fmt: skip
    clock = await api.call("time")
    assert abs(clock["result"]["serverTime"] - time.time() * 1000) < 5000
    answer = await api.call("userDataStream.subscribe.signature", signed(trader, recvWindow=5000))
    assert (answer["status"], answer["result"]) == (200, {"subscriptionId": 0})

    order = await asyncio.to_thread(
        trader.client.order_limit_buy, symbol="ETHUSD", quantity="0.0100", price="1000.00"
    )
    await api.until(lambda received: len(_events(received, "outboundAccountPosition")) == 1)
    [report] = _events(api.received, "executionReport")
    assert (report["i"], report["x"], report["X"]) == (order["orderId"], "NEW", "NEW")
    [position] = _events(api.received, "outboundAccountPosition")
    assert [(b["a"], Decimal(b["f"]), Decimal(b["l"])) for b in position["B"]] == [
        ("USD", Decimal(90), Decimal(10))
    ]

    # Unsubscribed: no more events; the connection still answers.
    assert (await api.call("userDataStream.unsubscribe"))["result"] == {}
    count = len(api.received)
    await asyncio.to_thread(trader.client.cancel_order, symbol="ETHUSD", orderId=order["orderId"])
    await asyncio.sleep(0.5)
    assert api.received[count:] == []
    again = await api.call("userDataStream.subscribe.signature", signed(trader))
    assert again["result"] == {"subscriptionId": 0}


async def test_refusals_are_binance_error_frames(
    accounts: Accounts, open_ws_api: Callable[[], Any]
) -> None:
    """Each refusal an error frame with Binance's status and code; the connection stays."""
    trader, other = accounts(), accounts()
    api = await open_ws_api()

    async def refused(method: str, params: dict[str, Any] | None = None) -> tuple[int, int]:
        answer = await api.call(method, params)
        assert "result" not in answer and set(answer["error"]) == {"code", "msg"}, answer
        return answer["status"], answer["error"]["code"]

    subscribe = "userDataStream.subscribe.signature"
    assert await refused(subscribe, signed(trader, secret=other.secret)) == (400, -1022)
    assert await refused(subscribe, signed(other) | {"apiKey": trader.key}) == (400, -1022)
    assert await refused(subscribe, signed(trader) | {"apiKey": "A" * 64}) == (401, -2015)
    stale = signed(trader, timestamp=int(time.time() * 1000) - 60_000)
    assert await refused(subscribe, stale) == (400, -1021)
    assert await refused(subscribe, {"apiKey": trader.key}) == (400, -1102)
    assert await refused(subscribe, signed(trader, symbol="BTCUSD")) == (400, -1104)
    replayed = signed(trader)
    assert (await api.call(subscribe, replayed))["status"] == 200
    await api.call("userDataStream.unsubscribe")
    assert await refused(subscribe, replayed) == (400, -1022)
    assert await refused("order.place", {"symbol": "BTCUSD"}) == (400, -1020)
    assert await refused("nonsense") == (400, -1020)

    count = len(api.received)
    await api.connection.send(b"{not json")
    await api.until(lambda received: len(received) > count)
    assert api.received[-1]["id"] is None and api.received[-1]["error"]["code"] == -1100
    assert (await api.call("ping"))["status"] == 200


async def test_the_internal_route_answers_ws_only(stack: Stack, accounts: Accounts) -> None:
    """The api's signature check for ws answers only ws's service token: not a user's access
    token, nor a token of another subject or signed with another secret."""
    trader = accounts()
    body = {"params": signed(trader), "peer": "127.0.0.1"}
    others = {
        "none": None,
        "access": trader.access_token,
        "other subject": issue_token("mm", "service", JWT_SECRET, 60),
        "other secret": issue_token(WS_SERVICE, "service", "another-secret-" + "y" * 24, 60),
    }
    async with httpx.AsyncClient(base_url=stack.api.url, timeout=10) as http:
        for name, token in others.items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            answer = await http.post(PATH, json=body, headers=headers)
            assert (answer.status_code, answer.json()["code"]) == (401, -1002), name
        service = {"Authorization": f"Bearer {issue_token(WS_SERVICE, 'service', JWT_SECRET, 60)}"}
        answer = await http.post(PATH, json=body, headers=service)
        assert answer.status_code == 200 and answer.json()["user"] == trader.user_id
        listen_key = answer.json()["listenKey"]
        assert (await http.put(PATH, json={"listenKey": listen_key}, headers=service)).json() == {}
        await http.request("DELETE", PATH, json={"listenKey": listen_key}, headers=service)
        gone = await http.put(PATH, json={"listenKey": listen_key}, headers=service)
        assert (gone.status_code, gone.json()["code"]) == (400, -1125)


async def test_a_subscription_whose_key_is_gone_is_terminated(
    stack: Stack, accounts: Accounts, open_ws_api: Callable[[], Any]
) -> None:
    """The subscription's listen key (the api's, never shown to the client) closed: Binance's
    `eventStreamTerminated`, and no more events; the connection stays."""
    trader = accounts(USD="100")
    api = await open_ws_api()
    assert (await api.call("userDataStream.subscribe.signature", signed(trader)))["status"] == 200
    client = redis.asyncio.Redis.from_url(stack.redis_url)
    try:
        keys = [key async for key in client.scan_iter(match="xch:listen:*")]
        owners = await client.mget(keys)
        await client.delete(
            *[k for k, owner in zip(keys, owners, strict=True) if owner == trader.user_id.encode()]
        )
    finally:
        await client.aclose()
    await api.until(lambda received: len(_events(received, "eventStreamTerminated")) == 1)
    count = len(api.received)
    await asyncio.to_thread(
        trader.client.order_limit_buy, symbol="ETHUSD", quantity="0.0100", price="1000.00"
    )
    await asyncio.sleep(0.5)
    assert api.received[count:] == []
    assert (await api.call("ping"))["status"] == 200
