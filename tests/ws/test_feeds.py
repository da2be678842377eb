"""A market feed in process, against a real Redis: a gap in depth update ids reloads the book
from the engine's depth key and hands every depth subscriber a fresh snapshot."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import msgspec
import orjson
import redis.asyncio

from tests.ws.test_protocol import register
from ws.config import Settings
from ws.hub import Client
from ws.metrics import WsMetrics
from ws.protocol import Stream
from ws.service import Service
from xch import keys
from xch.schemas import Depth, Trade
from xch.wire import FIELD_EVENT, encode_events


def depth(first: int, last: int, bids: list[tuple[int, int]]) -> Depth:
    return Depth("btc-usd", last, "1-0", 0, first, last, bids, [])


def queued(client: Client) -> list[dict[str, object]]:
    """The client's backlog (a client without a writer keeps it for its sender task)."""
    return [orjson.loads(text)["data"] for text, _ in client.take()]


async def test_a_gap_reloads_the_book_from_the_depth_key(
    redis_client: redis.asyncio.Redis, manifest: Path
) -> None:
    await register(redis_client, manifest)
    key = keys.market_depth("btc-usd")
    await redis_client.set(
        key, msgspec.msgpack.encode({"last_update_id": 2, "bids": [[100, 5]], "asks": []})
    )
    async with asyncio.TaskGroup() as tasks:
        service = Service(Settings(), redis_client, None, WsMetrics(), tasks)
        feed = await service.feed("btc-usd")
        assert feed is not None
        await service.load_depth(feed, with_position=True)
        service.readers.pop("btc-usd").cancel()  # this test feeds the entries itself
        service.running = False
        client = Client(100)
        service.hub.subscribe(client, Stream("depth", "btc-usd"))
        service.hub.subscribe(client, Stream("trade", "btc-usd"))

        # Continuing ids: a diff.
        await service.apply_entry(
            feed, "1-0", {FIELD_EVENT: encode_events([depth(3, 3, [(101, 1)])])}
        )
        assert queued(client) == [
            {
                "type": "update",
                "market": "btc-usd",
                "first_update_id": 3,
                "last_update_id": 3,
                "bids": [["1.01", "0.0001"]],
                "asks": [],
                "ts": 0,
            }
        ]
        # Ids 4..6 never seen: the book comes from the key (which is at 7), and the entry's
        # depth is already in it; its trade is still sent.
        await redis_client.set(
            key,
            msgspec.msgpack.encode({"last_update_id": 7, "bids": [[100, 5], [99, 2]], "asks": []}),
        )
        trade = Trade("btc-usd", 6, "2-0", 0, 1, 100, 1, 100, "a", "u1", "b", "u2", "buy", 0, 0, 0)
        await service.apply_entry(
            feed, "2-0", {FIELD_EVENT: encode_events([trade, depth(7, 7, [(99, 2)])])}
        )
        snapshot, sent_trade = queued(client)
        assert snapshot == {
            "type": "snapshot",
            "market": "btc-usd",
            "last_update_id": 7,
            "bids": [["1.00", "0.0005"], ["0.99", "0.0002"]],
            "asks": [],
        }
        assert sent_trade["trade_id"] == 1
        resyncs = service.metrics.registry.get_sample_value(
            "ws_depth_resyncs_total", {"market": "btc-usd"}
        )
        assert resyncs == 1


async def test_the_100ms_depth_stream_merges_a_burst_of_diffs(
    redis_client: redis.asyncio.Redis, manifest: Path
) -> None:
    """Ten diffs fed over about 50 ms reach a depth@M@100ms subscriber as a merged diff at
    once and then at most one per 100 ms, which together leave the same book."""
    await register(redis_client, manifest)
    async with asyncio.TaskGroup() as tasks:
        service = Service(Settings(), redis_client, None, WsMetrics(), tasks)
        feed = await service.feed("btc-usd")
        assert feed is not None
        # This test feeds the entries itself: the reader must be gone before it starts, or
        # its first load of the book could land between the test's diffs. (A cancel can be
        # lost inside a redis-py call; with `running` off the reader ends after one read.)
        service.running = False
        reader = service.readers.pop("btc-usd")
        reader.cancel()
        await asyncio.wait({reader}, timeout=10)
        assert reader.done()
        await service.load_depth(feed, with_position=True)
        client = Client(100)
        service.hub.subscribe(client, Stream("depth", "btc-usd", "100ms"))
        queued(client)  # the snapshot
        started = time.monotonic()
        for n in range(1, 11):
            entry = {FIELD_EVENT: encode_events([depth(n, n, [(100 + n % 3, n)])])}
            await service.apply_entry(feed, f"{n}-0", entry)
            await asyncio.sleep(0.005)  # the loop runs between diffs, as it does live
        fed_for = time.monotonic() - started
        await asyncio.sleep(0.25)
        merged = queued(client)
        # One at once, then one per 100 ms window the feeding took (about 50 ms unless the
        # machine is loaded): never one per diff.
        assert 1 <= len(merged) <= 2 + fed_for / 0.1
        assert (merged[0]["first_update_id"], merged[-1]["last_update_id"]) == (1, 10)
        levels: dict[str, str] = {}
        for diff in merged:
            bids = diff["bids"]
            assert isinstance(bids, list)
            levels.update((price, qty) for price, qty in bids)
        # the last quantity at each price: 100 <- 9, 101 <- 10, 102 <- 8 (lots of 0.0001)
        assert levels == {"1.00": "0.0009", "1.01": "0.0010", "1.02": "0.0008"}


async def test_a_subscriber_before_the_first_load_gets_the_loaded_book(
    redis_client: redis.asyncio.Redis, manifest: Path
) -> None:
    """A replica that just started has feeds whose book is not loaded yet: a client that
    subscribes then must not get the empty book (the diffs after the loaded one would not
    chain onto it), but the loaded book as soon as it is there."""
    await register(redis_client, manifest)
    await redis_client.set(
        keys.market_depth("btc-usd"),
        msgspec.msgpack.encode({"last_update_id": 9, "bids": [[100, 5]], "asks": []}),
    )
    async with asyncio.TaskGroup() as tasks:
        service = Service(Settings(), redis_client, None, WsMetrics(), tasks)
        feed = await service.feed("btc-usd")
        assert feed is not None
        service.readers.pop("btc-usd").cancel()  # this test loads the book itself
        service.running = False
        client = Client(100)
        stream = Stream("depth", "btc-usd")
        service.hub.subscribe(client, stream)
        assert service.snapshots(stream, None) == []

        await service.load_depth(feed, with_position=True)
        [snapshot] = queued(client)
        assert snapshot["type"] == "snapshot"
        assert snapshot["last_update_id"] == 9
        assert snapshot["bids"] == [["1.00", "0.0005"]]
        assert service.snapshots(stream, None) != []
