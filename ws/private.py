"""The `balances` stream's state: balances read back from `xch:bal:{user}` after a batch (or
a deposit or withdrawal) touched the user (ws.streams.balances), by one task that coalesces
the users touched meanwhile; only the assets that changed since the last message are sent,
to the native `balances` stream and as Binance's `outboundAccountPosition` to the user's
Binance user-data stream (ws.binance_user).
"""

import asyncio
import logging
import time
from typing import Any

import redis.asyncio
from redis.exceptions import RedisError

from ws import protocol
from ws.binance_user import listening, publish_user_event
from ws.hub import Hub, topic_of
from ws.protocol import Stream
from xch import keys
from xch.money import format_minor

log = logging.getLogger(__name__)

BALANCES = Stream("balances")
Balances = dict[str, tuple[int, int]]
"""asset -> (free, locked) in minor units."""


class Private:
    def __init__(self, hub: Hub, client: redis.asyncio.Redis, retry_seconds: float) -> None:
        self.hub = hub
        self.client = client
        self.retry_seconds = retry_seconds
        self.scales: dict[str, int] = {}
        self.balances: dict[str, Balances] = {}
        self.pending: set[str] = set()
        self.wake = asyncio.Event()
        self.running = True

    def following(self, user: str) -> bool:
        return self.hub.has_subscribers(topic_of(BALANCES, user)) or listening(self.hub, user)

    def touched(self, user: str) -> None:
        if self.following(user):
            self.pending.add(user)
            self.wake.set()

    async def run(self) -> None:
        while self.running:
            await self.wake.wait()
            self.wake.clear()
            users, self.pending = self.pending, set()
            try:
                await self.refresh(sorted(users))
            except RedisError as exc:
                log.warning("balance refresh failed: %s", exc)
                self.pending |= users
                self.wake.set()
                await asyncio.sleep(self.retry_seconds)

    async def refresh(self, users: list[str]) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            for user in users:
                pipe.hgetall(keys.balances(user))
            replies = await pipe.execute()
        for user, raw in zip(users, replies, strict=True):
            if not self.following(user):
                self.balances.pop(user, None)
                continue
            current = parse_balances(raw)
            before = self.balances.get(user, {})
            changed = {
                asset: value for asset, value in current.items() if before.get(asset) != value
            }
            self.balances[user] = current
            if changed:
                self.publish(user, changed)

    def publish(self, user: str, changed: Balances) -> None:
        topic = topic_of(BALANCES, user)
        if self.hub.has_subscribers(topic):
            self.hub.publish(topic, self.message(changed))
        publish_user_event(self.hub, user, self.account_position(changed))

    async def load(self, user: str) -> None:
        """Read the user's balances before a first `balances` subscription."""
        raw = await self.client.hgetall(keys.balances(user))
        self.balances.setdefault(user, parse_balances(raw))

    def snapshot(self, user: str) -> list[str]:
        return [self.message(self.balances.get(user, {}))]

    def message(self, balances: Balances) -> str:
        payload: dict[str, dict[str, str]] = {}
        for asset, (free, locked) in sorted(balances.items()):
            scale = self.scales.get(asset)
            if scale is not None:
                payload[asset] = {
                    "free": format_minor(free, scale),
                    "locked": format_minor(locked, scale),
                }
        return protocol.data(BALANCES.name, {"type": "balances", "balances": payload})

    def account_position(self, balances: Balances) -> dict[str, Any]:
        """Binance's `outboundAccountPosition`: the assets that changed (`B`), free (`f`) and
        locked (`l`)."""
        now = int(time.time() * 1000)
        changed = [
            {"a": asset, "f": format_minor(free, scale), "l": format_minor(locked, scale)}
            for asset, (free, locked) in sorted(balances.items())
            if (scale := self.scales.get(asset)) is not None
        ]
        return {"e": "outboundAccountPosition", "E": now, "u": now, "B": changed}


def parse_balances(raw: dict[Any, Any]) -> Balances:
    fields: dict[str, int] = {}
    for name, value in raw.items():
        text = name.decode() if isinstance(name, bytes) else str(name)
        fields[text] = int(value)
    assets = {name.rsplit(":", 1)[0] for name in fields}
    return {
        asset: (fields.get(keys.free_field(asset), 0), fields.get(keys.locked_field(asset), 0))
        for asset in assets
    }
