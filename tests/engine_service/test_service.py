"""The engine service end to end: a real `python -m engine` process and a real Redis."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis.asyncio

from engine.commands import FundsRequest
from engine.replay import ReplaySession
from ledger.gateway import Claim, ClaimTaken, Gateway
from tests.harness.engine import EngineProcess, load_rules, place, read_events, wait_applied
from tests.harness.processes import http_get
from xch import keys
from xch.schemas import (
    BUY,
    SELL,
    Event,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    Place,
    Side,
    Trade,
)
from xch.wire import decode_reply

StartEngine = Callable[..., EngineProcess]


def limit(order_id: str, user: str, side: Side, price: int, qty: int) -> Place:
    return Place(order_id, user, side, "limit", price, qty, 0, "GTC", "EXPIRE_MAKER", 0)


async def test_orders_are_matched_settled_and_answered(
    redis_client: redis.asyncio.Redis, engines: StartEngine, manifest: Path
) -> None:
    rules = load_rules(manifest)
    engine = engines()
    await engine.wait_ready()
    gateway = Gateway(redis_client, reply_to="api-test")
    replies = redis_client.pubsub()
    await replies.subscribe(keys.reply_channel("api-test"))
    reference = ReplaySession(rules)
    for user, asset, amount in [("alice", "USD", 10**12), ("bob", "BTC", 10**9)]:
        await gateway.deposit(user, asset, amount)
        reference.submit_parsed(FundsRequest(user, asset, amount), "0")
    # bob sells 0.5 BTC at 30000.00; alice buys 0.7 at 30001.00: 0.5 trades at 30000.00
    orders = [limit("s1", "bob", SELL, 3_000_000, 5000), limit("b1", "alice", BUY, 3_000_100, 7000)]
    ids = [await place(gateway, rules, order) for order in orders]
    for order in orders:
        reference.submit_parsed(order, "0")
    assert all(ids)
    await wait_applied(redis_client, rules.name, str(ids[-1]))

    answered: dict[str, list[Event]] = {}
    deadline = time.monotonic() + 10
    while len(answered) < 2 and time.monotonic() < deadline:
        message = await replies.get_message(ignore_subscribe_messages=True, timeout=1)
        if message is not None:
            reply = decode_reply(message["data"])
            answered[reply.input_id] = reply.events
    assert [type(e) for e in answered[str(ids[0])]] == [OrderAccepted]
    assert [type(e) for e in answered[str(ids[1])]] == [OrderAccepted, Trade, OrderDone]
    trade = answered[str(ids[1])][1]
    assert isinstance(trade, Trade)
    assert (trade.price, trade.qty, trade.maker_order, trade.taker_order) == (
        3_000_000,
        5000,
        "s1",
        "b1",
    )
    # Redis balances are exactly the reference ledger's
    for user in ("alice", "bob", "@fees"):
        balances = await gateway.balances(user)
        assert {a: (b.free, b.locked) for a, b in balances.items()} == dict(
            reference.ledger.snapshot()[user]
        )
    events = await read_events(redis_client, rules.name)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert all(e.input_id in {str(i) for i in ids} for e in events)
    status, body = await http_get(engine.health_port, "/metrics")
    assert status == 200
    assert b"engine_commands_total 2.0" in body
    assert b"engine_book_orders 1.0" in body
    for stage in ("read", "parse", "decode", "match", "depth", "settle", "encode", "commit"):
        count = f'engine_stage_seconds_count{{stage="{stage}"}}'.encode()
        assert count in body  # a batch or two were timed in every stage
        assert count + b" 0.0" not in body
    await replies.aclose()  # type: ignore[no-untyped-call]


async def test_a_refused_lock_enqueues_nothing(
    redis_client: redis.asyncio.Redis, manifest: Path
) -> None:
    rules = load_rules(manifest)
    gateway = Gateway(redis_client)
    await gateway.deposit("carol", "USD", 1_000_000)
    order = limit("b1", "carol", BUY, 3_000_000, 10)  # 30000.00 x 0.0010 = 30 USD > 1 USD
    assert await place(gateway, rules, order) is None
    assert await redis_client.exists(keys.market_input(rules.name)) == 0
    balances = await gateway.balances("carol")
    assert (balances["USD"].free, balances["USD"].locked) == (1_000_000, 0)


async def test_a_claim_is_set_with_the_enqueue_or_not_at_all(
    redis_client: redis.asyncio.Redis, manifest: Path
) -> None:
    """The api's client id claim rides in the lock-and-enqueue step: a refused lock sets no
    claim, and a claim set already locks and enqueues nothing."""
    rules = load_rules(manifest)
    gateway = Gateway(redis_client)
    await gateway.deposit("frank", "USD", 1_000_000)
    claim = Claim("xch:test-claim", b"first", 60)
    order = limit("c1", "frank", BUY, 100, 1)
    assert await gateway.submit(rules.name, order, "frank", "USD", 2_000_000, claim) is None
    assert await redis_client.exists(claim.key) == 0
    assert await gateway.submit(rules.name, order, "frank", "USD", 1_000, claim) is not None
    assert await redis_client.get(claim.key) == b"first"
    assert 0 < await redis_client.ttl(claim.key) <= 60
    with pytest.raises(ClaimTaken) as taken:
        await gateway.submit(rules.name, order, "frank", "USD", 1_000, Claim(claim.key, b"2", 60))
    assert taken.value.value == b"first"
    assert await redis_client.xlen(keys.market_input(rules.name)) == 1
    balances = await gateway.balances("frank")
    assert (balances["USD"].free, balances["USD"].locked) == (999_000, 1_000)


async def test_bad_entries_are_refused_with_their_funds_given_back(
    redis_client: redis.asyncio.Redis, engines: StartEngine, manifest: Path
) -> None:
    rules = load_rules(manifest)
    engine = engines()
    await engine.wait_ready()
    gateway = Gateway(redis_client)
    await gateway.deposit("dave", "USD", 10**9)
    enqueue = gateway.scripts.enqueue
    stream = keys.market_input(rules.name)
    balance_key = keys.balances("dave")
    bad = [
        b"\xc1 not msgpack",  # undecodable
        b"\x81\xa4kind\xa4nope",  # msgpack of an unknown command kind
    ]
    ids = []
    for payload in bad:
        done, entry_id = await enqueue(
            keys=[balance_key, stream], args=[payload, "dave", "USD", "5000", ""]
        )
        assert done == 1
        ids.append(entry_id.decode())
    # a place that locks for another user than its own, and a cancel that locks funds
    wrong_user = limit("x1", "eve", BUY, 100, 1)
    ids.append(str(await gateway.submit(rules.name, wrong_user, "dave", "USD", 100)))
    ids.append(str(await redis_client.xadd(stream, {"c": b"", "u": b"dave"})))  # fields missing
    good = limit("b1", "dave", BUY, 3_000_000, 10)
    ids.append(str(await place(gateway, rules, good)))
    await wait_applied(redis_client, rules.name, ids[-1])
    events = await read_events(redis_client, rules.name)
    refused = [e for e in events if isinstance(e, OrderRejected)]
    assert [e.reason for e in refused] == ["invalid_command"] * 4
    assert [e.unlocked for e in refused] == [5000, 5000, 100, 0]
    assert any(isinstance(e, OrderAccepted) and e.order_id == "b1" for e in events)
    balances = await gateway.balances("dave")
    # only the good order's 30 USD stays locked
    assert (balances["USD"].free, balances["USD"].locked) == (10**9 - 30_000_000, 30_000_000)
    assert await engine.ready()
