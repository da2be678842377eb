"""Public and private streams against a real engine process, a real ws process and real
WebSocket clients: the book rebuilt from snapshot and diffs equals the engine's, every trade
arrives, and private streams carry the user's own updates only."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import redis.asyncio

from ledger.gateway import Gateway
from tests.harness.engine import EngineProcess, load_rules, place, read_events, wait_applied
from tests.harness.ws import WsClient, WsProcess
from tests.ws.test_protocol import SECRET, register
from xch import keys
from xch.auth import issue_token
from xch.market import MarketRules
from xch.money import format_minor, format_units
from xch.schemas import BUY, SELL, SIDES, Cancel, Place, Side, Trade

USD, BTC = 10**12, 10**10  # deposits: 1,000,000 USD and 100 BTC in minor units
MID = 3_000_000  # 30000.00 in ticks


def limit(order_id: str, user: str, side: Side, price: int, qty: int) -> Place:
    return Place(order_id, user, side, "limit", price, qty, 0, "GTC", "EXPIRE_MAKER", 0)


async def fund(gateway: Gateway, users: list[str]) -> None:
    for user in users:
        await gateway.deposit(user, "USD", USD)
        await gateway.deposit(user, "BTC", BTC)


async def start_market(
    redis_client: redis.asyncio.Redis,
    manifest: Path,
    engines: Callable[[], EngineProcess],
    ws_servers: Callable[..., WsProcess],
    env: dict[str, str] | None = None,
) -> tuple[MarketRules, WsProcess]:
    await register(redis_client, manifest)
    engine = engines()
    server = ws_servers({"EXCHANGE_JWT_SECRET": SECRET, **(env or {})})
    await engine.wait_ready()
    await server.wait_ready()
    return load_rules(manifest), server


def rebuild(messages: list[dict[str, Any]]) -> tuple[int, dict[str, dict[str, str]]]:
    """The book from a depth stream, as a client must do it: the last snapshot, then the diffs
    after it; the first may overlap the snapshot (a merged diff), the others chain exactly."""
    book: dict[str, dict[str, str]] = {"bids": {}, "asks": {}}
    last = -1
    for message in messages:
        if message["type"] == "snapshot":
            book = {side: dict(message[side]) for side in ("bids", "asks")}
            last, fresh = message["last_update_id"], True
            continue
        assert last >= 0, "a diff before any snapshot"
        if message["last_update_id"] <= last:
            assert fresh, "an old diff after the first one"
            continue
        if fresh:
            assert message["first_update_id"] <= last + 1, (message, last)
        else:
            assert message["first_update_id"] == last + 1, (message, last)
        fresh = False
        for side in ("bids", "asks"):
            for price, qty in message[side]:
                if Decimal(qty) == 0:
                    book[side].pop(price, None)
                else:
                    book[side][price] = qty
        last = message["last_update_id"]
    return last, book


async def engine_book(
    client: redis.asyncio.Redis, rules: MarketRules
) -> tuple[int, dict[str, dict[str, str]]]:
    raw: Any = await client.get(keys.market_depth(rules.name))
    value = msgspec.msgpack.decode(raw)
    book = {
        side: {format_units(p, rules.tick): format_units(q, rules.lot) for p, q in value[side]}
        for side in ("bids", "asks")
    }
    return value["last_update_id"], book


async def random_flow(gateway: Gateway, rules: MarketRules, users: list[str], count: int) -> str:
    """Random limit orders around MID and cancels of earlier ones; the last input id."""
    rng = random.Random(7)
    last = ""
    placed: list[tuple[str, str]] = []
    for n in range(count):
        if placed and rng.random() < 0.2:
            order_id, user = placed.pop(rng.randrange(len(placed)))
            entry = await gateway.submit(rules.name, Cancel(order_id, user), user)
        else:
            user, side = rng.choice(users), rng.choice(SIDES)
            price = MID + rng.randint(-40, 40) + (10 if side == SELL else -10)
            order = limit(f"o{n}", user, side, price, rng.randint(1, 30))
            placed.append((order.order_id, user))
            entry = await place(gateway, rules, order)
        assert entry is not None
        last = entry
    return last


def diffs(client: WsClient, stream: str) -> list[dict[str, Any]]:
    """The depth diffs a client received on `stream`, as envelopes (with their arrival)."""
    return [m for m in client.data if m["stream"] == stream and m["data"]["type"] != "snapshot"]


async def test_depth_and_trades_follow_the_engine(
    redis_client: redis.asyncio.Redis,
    manifest: Path,
    engines: Callable[[], EngineProcess],
    ws_servers: Callable[..., WsProcess],
) -> None:
    rules, server = await start_market(redis_client, manifest, engines, ws_servers)
    gateway = Gateway(redis_client)
    users = ["u0", "u1", "u2", "u3"]
    await fund(gateway, users)
    early = await WsClient.open(server.url)
    late = await WsClient.open(server.url)
    merged = await WsClient.open(server.url)
    try:
        await early.subscribe("depth@btc-usd", "trade@btc-usd")
        await random_flow(gateway, rules, users, 150)
        await late.subscribe("DEPTH@BTC-USD")  # joins with the book already full
        merged_since = time.monotonic()
        await merged.subscribe("depth@btc-usd@100ms")
        last_input = await random_flow(gateway, rules, users[::-1], 150)
        await wait_applied(redis_client, rules.name, last_input)
        expected_id, expected_book = await engine_book(redis_client, rules)
        assert expected_book["bids"] and expected_book["asks"]

        for client, stream in (
            (early, "depth@btc-usd"),
            (late, "depth@btc-usd"),
            (merged, "depth@btc-usd@100ms"),
        ):
            await client.collect(
                lambda c, s=stream: rebuild(c.stream(s))[0] >= expected_id, timeout=20
            )
            assert rebuild(client.stream(stream)) == (expected_id, expected_book)
        # Merged diffs come at most one per 100 ms: no more than the plain diffs (how many
        # fewer depends on how the engine happened to batch the flow), and no more than the
        # 100 ms windows since the subscription.
        merged_diffs = diffs(merged, "depth@btc-usd@100ms")
        assert len(merged_diffs) <= len(diffs(late, "depth@btc-usd"))
        assert len(merged_diffs) <= 1 + (time.monotonic() - merged_since) / 0.1

        trades = [e for e in await read_events(redis_client, rules.name) if isinstance(e, Trade)]
        assert len(trades) > 20
        await early.collect(lambda c: len(c.stream("trade@btc-usd")) >= len(trades))
        assert early.stream("trade@btc-usd") == [
            {
                "type": "trade",
                "market": "btc-usd",
                "trade_id": t.trade_id,
                "price": format_units(t.price, rules.tick),
                "qty": format_units(t.qty, rules.lot),
                "quote_qty": format_minor(t.quote_qty, rules.quote_scale),
                "taker_side": t.taker_side,
                "seq": t.seq,
                "ts": t.ts,
            }
            for t in trades
        ]
        assert not early.other and not late.other  # no resync notices, no errors
    finally:
        for client in (early, late, merged):
            await client.close()


async def test_private_streams_carry_only_the_users_own_updates(
    redis_client: redis.asyncio.Redis,
    manifest: Path,
    engines: Callable[[], EngineProcess],
    ws_servers: Callable[..., WsProcess],
) -> None:
    rules, server = await start_market(redis_client, manifest, engines, ws_servers)
    gateway = Gateway(redis_client)
    await fund(gateway, ["alice", "bob", "carol"])
    await redis_client.set(keys.listen_key("bob-key"), "bob", ex=60)
    alice = await WsClient.open(f"{server.url}?token={issue_token('alice', 'access', SECRET, 60)}")
    bob = await WsClient.open(f"{server.url}?listen_key=bob-key")
    try:
        await alice.subscribe("orders", "balances")
        await bob.subscribe("orders", "balances")
        await alice.collect(lambda c: bool(c.stream("balances")))
        assert alice.stream("balances") == [
            {
                "type": "balances",
                "balances": {
                    "BTC": {"free": "100.00000000", "locked": "0.00000000"},
                    "USD": {"free": "1000000.000000", "locked": "0.000000"},
                },
            }
        ]
        await place(gateway, rules, limit("a1", "alice", SELL, MID, 5))
        await place(gateway, rules, limit("c1", "carol", BUY, MID - 100, 2))
        await place(gateway, rules, limit("c2", "carol", SELL, MID + 100, 2))
        last = await place(gateway, rules, limit("b1", "bob", BUY, MID + 1, 3))
        assert last is not None
        await wait_applied(redis_client, rules.name, last)

        await alice.collect(lambda c: any(m["type"] == "fill" for m in c.stream("orders")))
        await bob.collect(lambda c: any(m.get("status") == "filled" for m in c.stream("orders")))
        alice_orders = alice.stream("orders")
        bob_orders = bob.stream("orders")
        assert {m["order_id"] for m in alice_orders} == {"a1"}
        assert {m["order_id"] for m in bob_orders} == {"b1"}
        assert [m["status"] for m in alice_orders if m["type"] == "order"] == ["new"]
        assert [m["status"] for m in bob_orders if m["type"] == "order"] == ["new", "filled"]
        fill = next(m for m in alice_orders if m["type"] == "fill")
        assert fill["role"] == "maker" and fill["side"] == SELL
        assert (fill["price"], fill["qty"], fill["fee_asset"]) == ("30000.00", "0.0003", "USD")
        assert fill["fee"] == "0.009000"  # 10 bps of 9 USD
        taker = next(m for m in bob_orders if m["type"] == "fill")
        assert taker["role"] == "taker" and taker["fee_asset"] == "BTC"

        # Balances converge on what Redis holds, one message per change, own assets only.
        for client, user in ((alice, "alice"), (bob, "bob")):
            balances = await gateway.balances(user)
            expected = {
                asset: {
                    "free": format_minor(b.free, 8 if asset == "BTC" else 6),
                    "locked": format_minor(b.locked, 8 if asset == "BTC" else 6),
                }
                for asset, b in balances.items()
            }

            def current(c: WsClient) -> dict[str, Any]:
                merged: dict[str, Any] = {}
                for message in c.stream("balances"):
                    merged.update(message["balances"])
                return merged

            await client.collect(lambda c, expected=expected: current(c) == expected)

        # A deposit reaches the balances stream too (through the funds stream), as one change.
        before = len(alice.stream("balances"))
        usd = (await gateway.balances("alice"))["USD"]
        await gateway.deposit("alice", "USD", 2_500_000)
        await alice.collect(lambda c: len(c.stream("balances")) > before)
        assert alice.stream("balances")[before:] == [
            {
                "type": "balances",
                "balances": {
                    "USD": {
                        "free": format_minor(usd.free + 2_500_000, 6),
                        "locked": format_minor(usd.locked, 6),
                    }
                },
            }
        ]
        for message in alice.data + bob.data:
            text = str(message)
            assert "carol" not in text and "c1" not in text and "c2" not in text
    finally:
        await alice.close()
        await bob.close()
