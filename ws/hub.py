"""Subscriptions and fan-out with one bounded queue per client.

A message is serialized once per topic and offered to each subscriber's queue without
waiting. A client whose queue is full is too slow: its queue is dropped and it gets a
`resync` notice followed by fresh snapshots of its streams, at most `max_resyncs` times;
after that it is cut off. So one slow client never delays the others or grows memory.
"""

import asyncio
import itertools
from collections.abc import Callable, Iterable

from ws import protocol
from ws.frames import Outgoing, outgoing
from ws.metrics import WsMetrics
from ws.protocol import Stream

SLOW = "slow_consumer"

Snapshots = Callable[[Stream, str | None], list[str]]
"""What a stream's subscriber needs first (a depth snapshot, the current candle...)."""


class Client:
    _ids = itertools.count(1)

    def __init__(self, queue_size: int) -> None:
        self.id = next(self._ids)
        self.queue: asyncio.Queue[Outgoing] = asyncio.Queue(queue_size)
        self.streams: dict[str, Stream] = {}
        self.user: str | None = None
        self.resyncs = 0
        self.cut_off = asyncio.Event()

    def offer(self, message: Outgoing) -> bool:
        """Queue `message`; False if the queue is full (or the client is cut off)."""
        if self.cut_off.is_set():
            return True
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            return False
        return True

    def drain(self) -> int:
        dropped = 0
        while not self.queue.empty():
            self.queue.get_nowait()
            dropped += 1
        return dropped


def topic_of(stream: Stream, user: str | None) -> str:
    """Public streams are topics by name; private ones are per user."""
    return f"{stream.topic}:{user}" if stream.private else stream.topic


class Hub:
    def __init__(self, metrics: WsMetrics, max_resyncs: int, snapshots: Snapshots) -> None:
        self.metrics = metrics
        self.max_resyncs = max_resyncs
        self.snapshots = snapshots
        self.topics: dict[str, set[Client]] = {}

    def has_subscribers(self, topic: str) -> bool:
        return topic in self.topics

    def subscribe(self, client: Client, stream: Stream) -> bool:
        """False if the client already had it (or was cut off)."""
        if stream.name in client.streams or client.cut_off.is_set():
            return False
        client.streams[stream.name] = stream
        self.topics.setdefault(topic_of(stream, client.user), set()).add(client)
        self.metrics.subscriptions.labels(stream.kind).inc()
        return True

    def unsubscribe(self, client: Client, stream: Stream) -> None:
        if client.streams.pop(stream.name, None) is None:
            return
        topic = topic_of(stream, client.user)
        members = self.topics.get(topic)
        if members is not None:
            members.discard(client)
            if not members:
                del self.topics[topic]
        self.metrics.subscriptions.labels(stream.kind).dec()

    def remove(self, client: Client) -> None:
        for stream in list(client.streams.values()):
            self.unsubscribe(client, stream)

    def publish(self, topic: str, message: str) -> None:
        """The frame is built once for all the topic's subscribers."""
        members = self.topics.get(topic)
        if not members:
            return
        item = outgoing(message)
        for client in list(members):
            if not client.offer(item):
                self.fell_behind(client)

    def send(self, client: Client, message: str) -> None:
        if not client.offer(outgoing(message)):
            self.fell_behind(client)

    def send_all(self, client: Client, messages: Iterable[str]) -> None:
        for message in messages:
            self.send(client, message)

    def fell_behind(self, client: Client) -> None:
        self.metrics.dropped.inc(client.drain() + 1)
        if client.resyncs >= self.max_resyncs:
            self.metrics.slow_clients.labels("disconnect").inc()
            self.remove(client)
            client.cut_off.set()
            return
        client.resyncs += 1
        self.metrics.slow_clients.labels("resync").inc()
        streams = sorted(client.streams)
        client.offer(outgoing(protocol.notice("resync", reason=SLOW, streams=streams)))
        for stream in list(client.streams.values()):
            for message in self.snapshots(stream, client.user):
                if not client.offer(outgoing(message)):  # even the snapshots do not fit: give up
                    self.fell_behind(client)
                    return
