"""The engines' immediate results for this api instance (`xch:reply:{instance}`).

A caller registers what it waits for (the order id and whether it placed, placed an OCO
list, by its first leg, or canceled) before it enqueues the command, so a reply that comes
back faster than the enqueue call returns is never missed. One pub/sub subscription serves
every request of the process (runtime.redis_pipe: each message handed over as it is parsed).
"""

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Literal

import msgspec

from runtime.redis_pipe import Address, PipelinedSubscription
from xch import keys
from xch.schemas import Event, OrderAccepted, OrderDone, OrderRejected
from xch.wire import decode_reply

log = logging.getLogger("api.replies")

Op = Literal["place", "place_list", "cancel"]
WaitKey = tuple[Op, str]


def wait_key_of(events: list[Event]) -> WaitKey | None:
    """Which command a reply answers: a place starts with its acceptance or rejection, an
    OCO list with its first leg's (an accepted leg names its list), a cancel with the
    canceled order's end or its rejection."""
    if not events:
        return None
    first = events[0]
    if isinstance(first, OrderAccepted):
        return ("place_list" if first.list_id else "place", first.order_id)
    if isinstance(first, OrderRejected):
        if first.op == "place_list":
            return ("place_list", first.order_id)
        return ("place" if first.op == "place" else "cancel", first.order_id)
    if isinstance(first, OrderDone):
        return ("cancel", first.order_id)
    return None


class ReplyListener:
    def __init__(self, address: Address, instance: str) -> None:
        self.channel = keys.reply_channel(instance)
        self.waiters: dict[WaitKey, asyncio.Future[list[Event]]] = {}
        self._subscription = PipelinedSubscription(address, self.channel, self.deliver)
        self.subscribed = self._subscription.subscribed

    @contextlib.contextmanager
    def expect(self, op: Op, order_id: str) -> Iterator[asyncio.Future[list[Event]]]:
        future: asyncio.Future[list[Event]] = asyncio.get_running_loop().create_future()
        key = (op, order_id)
        self.waiters[key] = future
        try:
            yield future
        finally:
            if self.waiters.get(key) is future:
                del self.waiters[key]

    def deliver(self, data: bytes) -> None:
        try:
            reply = decode_reply(data)
        except (msgspec.DecodeError, ValueError):
            log.error("undecodable reply on %s", self.channel)
            return
        key = wait_key_of(reply.events)
        future = self.waiters.get(key) if key is not None else None
        if future is not None and not future.done():
            future.set_result(reply.events)

    async def run(self) -> None:
        """Deliver replies until cancelled; subscribes again after a lost connection."""
        await self._subscription.run()
