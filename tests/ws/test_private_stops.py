"""Stop orders and OCO lists on the private `orders` stream, in process against a real Redis:
a stop waits, triggers, fills; the other leg of its list expires with reason `oco`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import redis.asyncio

from ledger.gateway import Gateway
from ledger.locks import list_lock
from tests.harness.engine import EngineProcess, place, wait_applied
from tests.harness.ws import WsClient, WsProcess
from tests.ws.test_feeds import queued
from tests.ws.test_protocol import SECRET, register
from tests.ws.test_streams import fund, limit, start_market
from ws.config import Settings
from ws.hub import Client
from ws.metrics import WsMetrics
from ws.service import Service
from ws.streams.orders import ORDERS
from xch.auth import issue_token
from xch.schemas import (
    BUY,
    SELL,
    Event,
    OrderAccepted,
    OrderDone,
    OrderTriggered,
    Place,
    PlaceList,
    Trade,
)
from xch.wire import FIELD_EVENT, encode_events

T0 = 1_700_000_000_000
LIST = "btc-usd.00000000000000aa"
ABOVE, BELOW = f"{LIST}0", f"{LIST}1"


def list_placed() -> list[Event]:
    """User 5's OCO sell: a limit maker at 32,000.00 above a stop-loss at 29,000.00."""
    return [
        OrderAccepted("btc-usd", 1, "1-0", T0, ABOVE, "5", "sell", "limit", "POST_ONLY",
                      "EXPIRE_MAKER", 3_200_000, 100, 0, 1_000_000, list_id=LIST),
        OrderAccepted("btc-usd", 2, "1-0", T0, BELOW, "5", "sell", "stop_loss", "GTC",
                      "EXPIRE_MAKER", 0, 100, 0, 0, stop_price=2_900_000, list_id=LIST),
    ]  # fmt: skip


def list_triggered() -> list[Event]:
    """A trade at 28,990.00 reaches the stop: it triggers, expires the limit maker, and sells
    into user 6's bid."""
    return [
        OrderTriggered("btc-usd", 5, "2-0", T0 + 1, BELOW, "5", "sell", 2_900_000, 2_899_000),
        OrderDone("btc-usd", 6, "2-0", T0 + 1, ABOVE, "5", "sell", "expired", "oco", 0, 0),
        Trade("btc-usd", 7, "2-0", T0 + 1, 2, 2_899_000, 100, 289_900_000, "btc-usd.b", "6",
              BELOW, "5", "sell", 1_000, 579_800, 0),
        OrderDone("btc-usd", 8, "2-0", T0 + 1, BELOW, "5", "sell", "filled", "", 100, 0),
    ]  # fmt: skip


async def test_a_stop_waits_triggers_and_fills_and_its_list_partner_expires(
    redis_client: redis.asyncio.Redis, manifest: Path
) -> None:
    await register(redis_client, manifest)
    async with asyncio.TaskGroup() as tasks:
        service = Service(Settings(), redis_client, None, WsMetrics(), tasks)
        feed = await service.feed("btc-usd")
        assert feed is not None
        service.readers.pop("btc-usd").cancel()  # this test feeds the entries itself
        service.running = False
        owner, other = Client(100), Client(100)
        owner.user, other.user = "5", "6"
        for client in (owner, other):
            service.hub.subscribe(client, ORDERS)

        await service.apply_entry(feed, "1-0", {FIELD_EVENT: encode_events(list_placed())})
        assert queued(owner) == [
            {"type": "order", "market": "btc-usd", "status": "new", "order_id": ABOVE,
             "client_order_id": "", "side": "sell", "order_type": "limit", "tif": "POST_ONLY",
             "price": "32000.00", "qty": "0.0100", "quote_qty": "0.000000", "stop_price": None,
             "list_id": LIST, "seq": 1, "ts": T0},
            {"type": "order", "market": "btc-usd", "status": "waiting", "order_id": BELOW,
             "client_order_id": "", "side": "sell", "order_type": "stop_loss", "tif": "GTC",
             "price": "0.00", "qty": "0.0100", "quote_qty": "0.000000", "stop_price": "29000.00",
             "list_id": LIST, "seq": 2, "ts": T0},
        ]  # fmt: skip

        await service.apply_entry(feed, "2-0", {FIELD_EVENT: encode_events(list_triggered())})
        updates = queued(owner)
        assert updates[0] == {
            "type": "order", "market": "btc-usd", "status": "triggered", "order_id": BELOW,
            "side": "sell", "stop_price": "29000.00", "last_price": "28990.00", "seq": 5,
            "ts": T0 + 1,
        }  # fmt: skip
        assert [(u["type"], u["order_id"], u.get("status"), u.get("reason")) for u in updates] == [
            ("order", BELOW, "triggered", None),
            ("order", ABOVE, "expired", "oco"),
            ("fill", BELOW, None, None),
            ("order", BELOW, "filled", ""),
        ]
        fill = updates[2]
        assert (fill["role"], fill["price"], fill["qty"], fill["fee"]) == (
            "taker", "28990.00", "0.0100", "0.579800"
        )  # fmt: skip
        # The other user sees only their own side of the trade, no trigger.
        assert [(u["type"], u["role"]) for u in queued(other)] == [("fill", "maker")]


async def test_the_engine_s_stop_and_list_updates_reach_their_user(
    redis_client: redis.asyncio.Redis,
    manifest: Path,
    engines: Callable[[], EngineProcess],
    ws_servers: Callable[..., WsProcess],
) -> None:
    """The same story from a real engine: alice's OCO sell waits; a trade at 28,990.00
    triggers its stop-loss, which expires the limit maker and sells into bob's bid."""
    rules, server = await start_market(redis_client, manifest, engines, ws_servers)
    gateway = Gateway(redis_client)
    await fund(gateway, ["alice", "bob", "carol"])
    alice = await WsClient.open(f"{server.url}?token={issue_token('alice', 'access', SECRET, 60)}")
    try:
        await alice.subscribe("orders")
        legs = [
            Place(ABOVE, "alice", SELL, "limit", 3_100_000, 5, 0, "POST_ONLY", "EXPIRE_MAKER", 0),
            Place(BELOW, "alice", SELL, "stop_loss", 0, 5, 0, "GTC", "EXPIRE_MAKER", 0,
                  stop_price=2_900_000),
        ]  # fmt: skip
        lock = list_lock(rules, legs)
        await gateway.submit(rules.name, PlaceList(LIST, "alice", legs, lock), "alice", "BTC", lock)
        await place(gateway, rules, limit("b1", "bob", BUY, 2_899_000, 10))
        last = await place(gateway, rules, limit("c1", "carol", SELL, 2_899_000, 1))
        assert last is not None
        await wait_applied(redis_client, rules.name, last)
        await alice.collect(lambda c: any(m.get("status") == "filled" for m in c.stream("orders")))
        updates = alice.stream("orders")
        assert [(u["type"], u["order_id"], u.get("status"), u.get("reason")) for u in updates] == [
            ("order", ABOVE, "new", None),
            ("order", BELOW, "waiting", None),
            ("order", BELOW, "triggered", None),
            ("order", ABOVE, "expired", "oco"),
            ("fill", BELOW, None, None),
            ("order", BELOW, "filled", ""),
        ]
        assert {u["list_id"] for u in updates[:2]} == {LIST}
        assert (updates[2]["stop_price"], updates[2]["last_price"]) == ("29000.00", "28990.00")
        assert (updates[4]["price"], updates[4]["qty"], updates[4]["role"]) == (
            "28990.00", "0.0005", "taker"
        )  # fmt: skip
    finally:
        await alice.close()
