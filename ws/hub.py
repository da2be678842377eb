"""Subscriptions and fan-out with one bounded backlog per client.

A message is serialized once per topic and appended to each subscriber's backlog without
waiting. Once per turn of the event loop the hub writes every backlog that grew straight to
its socket, all of a client's messages in one write, while the socket takes more; only a
client whose socket is full (or one served through plain ASGI sends) has its sender task
woken to write when it can. A client whose backlog is full is too slow: its backlog is
dropped and it gets a `resync` notice followed by fresh snapshots of its streams, at most
`max_resyncs` times; after that it is cut off. So one slow client never delays the others
or grows memory.
"""

import asyncio
import itertools
from collections.abc import Callable, Iterable

from ws import protocol
from ws.frames import FrameWriter, Outgoing, outgoing
from ws.metrics import WsMetrics
from ws.protocol import Stream

SLOW = "slow_consumer"

Snapshots = Callable[[Stream, str | None], list[str]]
"""What a stream's subscriber needs first (a depth snapshot, the current candle...)."""


class Client:
    _ids = itertools.count(1)

    def __init__(self, queue_size: int, writer: FrameWriter | None = None) -> None:
        self.id = next(self._ids)
        self.queue_size = queue_size
        self.writer = writer
        """Writes frames to the socket directly; None: the sender task sends through ASGI."""
        self.backlog: list[Outgoing] = []
        self.marked = False
        """In the hub's list of backlogs to write this turn."""
        self.sending = False
        """The sender task holds a batch: newer messages must wait for it (order)."""
        self.wake = asyncio.Event()
        """Tells the sender task there is a backlog the hub could not write."""
        self.streams: dict[str, Stream] = {}
        self.user: str | None = None
        self.resyncs = 0
        self.cut_off = False

    def offer(self, message: Outgoing) -> bool:
        """Append `message`; False if the backlog is full (or the client is cut off)."""
        if self.cut_off:
            return True
        if len(self.backlog) >= self.queue_size:
            return False
        self.backlog.append(message)
        return True

    def cut(self) -> None:
        """Too slow: no more messages, and the sender task ends the connection."""
        self.cut_off = True
        self.wake.set()

    def take(self) -> list[Outgoing]:
        batch, self.backlog = self.backlog, []
        return batch

    def drain(self) -> int:
        return len(self.take())

    def write(self) -> int:
        """Write the backlog to the socket if it takes more now: the messages written. If
        not, the sender task is woken to wait for it."""
        writer = self.writer
        if not self.backlog:
            return 0
        if writer is None or self.sending or not writer.writable():
            self.wake.set()
            return 0
        batch = self.take()
        writer.write_now(batch)
        return len(batch)


def topic_of(stream: Stream, user: str | None) -> str:
    """Public streams are topics by name; private ones are per user."""
    return f"{stream.topic}:{user}" if stream.private else stream.topic


class Hub:
    def __init__(self, metrics: WsMetrics, max_resyncs: int, snapshots: Snapshots) -> None:
        self.metrics = metrics
        self.max_resyncs = max_resyncs
        self.snapshots = snapshots
        self.topics: dict[str, set[Client]] = {}
        self.to_write: list[Client] = []
        self.write_scheduled = False

    def has_subscribers(self, topic: str) -> bool:
        return topic in self.topics

    def subscribe(self, client: Client, stream: Stream) -> bool:
        """False if the client already had it (or was cut off)."""
        if stream.name in client.streams or client.cut_off:
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
            self.queue(client, item)

    def send(self, client: Client, message: str) -> None:
        self.queue(client, outgoing(message))

    def send_all(self, client: Client, messages: Iterable[str]) -> None:
        for message in messages:
            self.send(client, message)

    def queue(self, client: Client, item: Outgoing) -> None:
        if not client.offer(item):
            self.fell_behind(client)
        if not client.marked:
            client.marked = True
            self.to_write.append(client)
            if not self.write_scheduled:
                self.write_scheduled = True
                asyncio.get_running_loop().call_soon(self.write)

    def write(self) -> None:
        """This turn's backlogs, each in one write (what the loop's callbacks queued since
        the last turn: a whole events entry, or several)."""
        self.write_scheduled = False
        clients, self.to_write = self.to_write, []
        written = 0
        for client in clients:
            client.marked = False
            written += client.write()
        if written:
            self.metrics.messages_out.inc(written)

    def fell_behind(self, client: Client) -> None:
        self.metrics.dropped.inc(client.drain() + 1)
        if client.resyncs >= self.max_resyncs:
            self.metrics.slow_clients.labels("disconnect").inc()
            self.remove(client)
            client.cut()
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
