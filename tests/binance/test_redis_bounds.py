"""What a Binance bot leaves in Redis is bounded: client order id claims expire soon (at once
for ids the api made up), OCO list records expire and are capped per user, and storage
answers for a list once Redis has let its record go."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import pytest
import redis
import redis.asyncio

from api.binance import lists
from api.binance.symbols import number_of
from api.services.idempotency import claim_key
from tests.binance.conftest import Account
from tests.binance.test_stops import Accounts, oco_sell, trade_at
from tests.harness.stacks import Stack
from xch import keys
from xch.order_lists import ListRecord, binance_list_id

DAY = 86400


@pytest.fixture
def client(stack: Stack) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(stack.redis_url)
    try:
        yield connection
    finally:
        connection.close()


def signed_order(account: Account, url: str, **params: str) -> dict[str, Any]:
    """A signed POST /api/v3/order as plain HTTP (python-binance always sends a client id)."""
    query = urlencode(params | {"timestamp": str(int(time.time() * 1000))})
    signature = hmac.new(account.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    answer = httpx.post(
        f"{url}/api/v3/order?{query}&signature={signature}",
        headers={"X-MBX-APIKEY": account.key},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_order_claims_expire(stack: Stack, client: redis.Redis, accounts: Accounts) -> None:
    trader: Account = accounts(USD="1000")
    order = {"symbol": "ETHUSD", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    made_up = signed_order(trader, stack.api.url, **order, quantity="0.0100", price="100.00")
    named = trader.client.order_limit_buy(symbol="ETHUSD", quantity="0.0100", price="100.00")
    made_up_ttl = client.ttl(claim_key(trader.user_id, made_up["clientOrderId"]))
    assert 0 < made_up_ttl <= 600  # only until dbproc stored the order
    assert 600 < client.ttl(claim_key(trader.user_id, named["clientOrderId"])) <= DAY


def claim(client: redis.Redis, user: str, client_order_id: str) -> dict[str, Any]:
    value = client.get(claim_key(user, client_order_id))
    assert isinstance(value, bytes)
    claimed: dict[str, Any] = orjson.loads(value)
    return claimed


def test_a_made_up_client_id_is_claimed_without_the_answer(
    stack: Stack, client: redis.Redis, accounts: Accounts
) -> None:
    """No client repeats an id it did not choose: its claim names the order, and keeps no
    copy of the answer (a Redis write less per order); the id still finds the order."""
    trader: Account = accounts(USD="1000")
    order = {"symbol": "ETHUSD", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    made_up = signed_order(trader, stack.api.url, **order, quantity="0.0100", price="100.00")
    named = trader.client.order_limit_buy(symbol="ETHUSD", quantity="0.0100", price="100.00")
    claimed = claim(client, trader.user_id, made_up["clientOrderId"])
    assert list(claimed) == ["order_id"]
    assert number_of(claimed["order_id"]) == made_up["orderId"]
    kept = claim(client, trader.user_id, named["clientOrderId"])
    assert sorted(kept) == ["body", "order_id", "status"]

    asyncio.run(stack.stored("eth-usd"))  # GET /api/v3/order reads what dbproc stored
    found = trader.client.get_order(symbol="ETHUSD", origClientOrderId=made_up["clientOrderId"])
    assert found["orderId"] == made_up["orderId"]
    again = signed_order(
        trader,
        stack.api.url,
        **order,
        quantity="0.0100",
        price="100.00",
        newClientOrderId=made_up["clientOrderId"],
    )
    assert again["orderId"] == made_up["orderId"]
    assert len(trader.client.get_open_orders(symbol="ETHUSD")) == 2


def test_list_records_expire_and_storage_answers_after_them(
    stack: Stack, client: redis.Redis, accounts: Accounts
) -> None:
    trade_at(accounts, "ETHUSD", "2000.00")
    trader = accounts(ETH="1")
    placed = oco_sell(trader.client, listClientOrderId="kept-1")
    number, user = placed["orderListId"], trader.user_id
    for key in (keys.order_list(user, number), keys.order_list_client(user, "kept-1")):
        assert 0 < client.ttl(key) <= DAY
    assert 0 < client.ttl(keys.recent_order_lists(user)) <= DAY
    asyncio.run(stack.stored("eth-usd"))
    from_redis = trader.client.v3_get_order_list(orderListId=number)

    # the records expired: PostgreSQL has the list
    client.delete(
        keys.order_list(user, number),
        keys.order_list_client(user, "kept-1"),
        keys.recent_order_lists(user),
    )
    stored = trader.client.v3_get_order_list(orderListId=number)
    assert trader.client.v3_get_order_list(origClientOrderId="kept-1") == stored
    assert {k: v for k, v in stored.items() if k != "transactionTime"} == {
        k: v for k, v in from_redis.items() if k != "transactionTime"
    }
    assert [found["orderListId"] for found in trader.client.get_open_oco_orders()] == [number]
    assert [found["orderListId"] for found in trader.client.v3_get_all_order_list()] == [number]
    # its listClientOrderId still names it: no second list under it
    again = oco_sell(trader.client, listClientOrderId="kept-1")
    assert again["orderListId"] == number


def test_a_users_recent_list_records_are_capped(client: redis.Redis, stack: Stack) -> None:
    user = "capped-user"
    asyncio.run(_record_many(stack.redis_url, user, lists.RECENT_LISTS + 5))
    recent = keys.recent_order_lists(user)
    assert client.zcard(recent) == lists.RECENT_LISTS
    assert client.zrange(recent, 0, 0) == [b"6"]  # the oldest went first


async def _record_many(url: str, user: str, count: int) -> None:
    connection = redis.asyncio.Redis.from_url(url)
    try:
        for number in range(1, count + 1):
            list_id = binance_list_id("eth-usd", number)
            listed = ListRecord("eth-usd", list_id, f"c{number}", [], number)
            assert await lists.record(connection, user, listed, DAY)
    finally:
        await connection.aclose()
