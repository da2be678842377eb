"""Subscriptions and fan-out with one bounded backlog per client.

A message is serialized once per topic. Clients with the same topics get the same bytes in
a turn of the event loop, so once per turn the hub joins each set of topics' messages once
and writes that to each of those clients' sockets, one write per client, without a Python
step per client per message. A client with messages of its own this turn (an answer, a
snapshot after subscribing, a backlog its socket did not take) is "queued": its messages go
to its own backlog, in order, written in one go at the turn's end while its socket takes
more; only a client whose socket is full (or one served through plain ASGI sends) has a
sender task started (`Client.wake`) to write when it can, which ends once the backlog is
written: an idle client has no task of its own. A client whose backlog is full is too slow:
its backlog is dropped and it gets a `resync` notice followed by fresh snapshots of its streams,
at most `max_resyncs` times; after that it is cut off. So one slow client never delays the
others or grows memory.
"""

import asyncio
import itertools
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import TypeVar

from ws import protocol
from ws.frames import FrameWriter, Outgoing, outgoing
from ws.metrics import WsMetrics
from ws.protocol import Stream

SLOW = "slow_consumer"
Key = TypeVar("Key", bound=Hashable)
Member = TypeVar("Member", bound=Hashable)

Snapshots = Callable[[Stream, str | None], list[str]]
"""What a stream's subscriber needs first (a depth snapshot, the current candle...)."""


def _idle() -> None:
    """A client with no connection behind it (in tests) has no sender to start."""


class Client:
    __slots__ = (
        "backlog",
        "cut_off",
        "id",
        "marked",
        "queue_size",
        "queued",
        "resyncs",
        "sending",
        "streams",
        "topics",
        "user",
        "wake",
        "writer",
    )
    _ids = itertools.count(1)

    def __init__(
        self, queue_size: int, writer: FrameWriter | None = None, wake: Callable[[], None] = _idle
    ) -> None:
        self.id = next(self._ids)
        self.queue_size = queue_size
        self.writer = writer
        """Writes frames to the socket directly; None: the sender task sends through ASGI."""
        self.backlog: list[Outgoing] = []
        self.marked = False
        """In the hub's list of backlogs to write this turn."""
        self.sending = False
        """The sender task holds a batch: newer messages must wait for it (order)."""
        self.wake = wake
        """Called when the backlog needs a sender task (the hub could not write it) or the
        client was cut off: the connection starts one unless it has one."""
        self.streams: dict[str, Stream] = {}
        self.topics: frozenset[str] = frozenset()
        """Its streams' topics: clients with the same topics share a turn's bytes."""
        self.queued = writer is None
        """Its messages go to its own backlog (ASGI sends always do). A client not queued has
        a writer and no sender task."""
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
        self.wake()

    def take(self) -> list[Outgoing]:
        batch, self.backlog = self.backlog, []
        return batch

    def drain(self) -> int:
        return len(self.take())

    def write(self) -> int:
        """Write the backlog to the socket if it takes more now: the messages written. If
        not, the sender task is woken to wait for it."""
        batch = self.backlog
        if not batch:
            return 0
        if not self.can_write():
            self.wake()
            return 0
        self.backlog = []
        self.write_frames(b"".join([frame for _, frame in batch]))
        return len(batch)

    def can_write(self) -> bool:
        writer = self.writer
        return writer is not None and not self.sending and writer.writable()

    def write_frames(self, frames: bytes) -> None:
        """Only when `can_write()`."""
        assert self.writer is not None
        self.writer.write_now(frames)


def topic_of(stream: Stream, user: str | None) -> str:
    """Public streams are topics by name; private ones are per user."""
    return f"{stream.topic}:{user}" if stream.private else stream.topic


class Hub:
    def __init__(self, metrics: WsMetrics, max_resyncs: int, snapshots: Snapshots) -> None:
        self.metrics = metrics
        self.max_resyncs = max_resyncs
        self.snapshots = snapshots
        self.topics: dict[str, set[Client]] = {}
        self.queued: dict[str, set[Client]] = {}
        """The queued clients of each topic: a message is appended to their backlogs."""
        self.groups: dict[frozenset[str], set[Client]] = {}
        """The clients by their set of topics: each group shares a turn's bytes."""
        self.groups_of: dict[str, set[frozenset[str]]] = {}
        """The groups (sets of topics) with each topic: a turn visits only those with news."""
        self.published: dict[str, list[tuple[int, Outgoing]]] = {}
        """This turn's messages by topic, numbered in the order they were published."""
        self.count = itertools.count()
        self.to_write: list[Client] = []
        """The queued clients to write this turn."""
        self.write_scheduled = False

    def has_subscribers(self, topic: str) -> bool:
        return topic in self.topics

    def subscribe(self, client: Client, stream: Stream) -> bool:
        """False if the client already had it (or was cut off)."""
        if stream.name in client.streams or client.cut_off:
            return False
        self.enqueue(client)  # what it had this turn comes before the new stream's messages
        client.streams[stream.name] = stream
        topic = topic_of(stream, client.user)
        self.topics.setdefault(topic, set()).add(client)
        self.queued.setdefault(topic, set()).add(client)
        self.regroup(client, client.topics | {topic})
        self.metrics.subscriptions.labels(stream.kind).inc()
        return True

    def unsubscribe(self, client: Client, stream: Stream) -> None:
        if stream.name not in client.streams:
            return
        self.enqueue(client)  # it still gets what was published before
        del client.streams[stream.name]
        topic = topic_of(stream, client.user)
        for members in (self.topics, self.queued):
            _discard(members, topic, client)
        self.regroup(client, client.topics - {topic})
        self.metrics.subscriptions.labels(stream.kind).dec()

    def regroup(self, client: Client, topics: frozenset[str]) -> None:
        """Move the client to the group of `topics` (none if empty)."""
        old = client.topics
        _discard(self.groups, old, client)
        if old and old not in self.groups:
            for topic in old:
                _discard(self.groups_of, topic, old)
        client.topics = topics
        if topics:
            if topics not in self.groups:
                for topic in topics:
                    self.groups_of.setdefault(topic, set()).add(topics)
            self.groups.setdefault(topics, set()).add(client)

    def remove(self, client: Client) -> None:
        for stream in list(client.streams.values()):
            self.unsubscribe(client, stream)

    def publish(self, topic: str, message: str) -> None:
        """The frame is built once for all the topic's subscribers; only the queued ones have
        it appended to their backlogs now, the others get this turn's bytes in `write`."""
        if topic not in self.topics:
            return
        item = outgoing(message)
        self.published.setdefault(topic, []).append((next(self.count), item))
        for client in tuple(self.queued.get(topic, ())):
            self.queue(client, item)
        self.schedule()

    def send(self, client: Client, message: str) -> None:
        self.enqueue(client)
        self.queue(client, outgoing(message))

    def send_all(self, client: Client, messages: Iterable[str]) -> None:
        for message in messages:
            self.send(client, message)

    def enqueue(self, client: Client) -> None:
        """From now on this turn the client's messages go to its backlog, after what its
        topics had so far this turn."""
        if client.queued:
            return
        client.queued = True
        for topic in client.topics:
            self.queued.setdefault(topic, set()).add(client)
        self.mark(client)
        for item in self.turn_messages(client.topics):
            self.queue(client, item)

    def queue(self, client: Client, item: Outgoing) -> None:
        if not client.offer(item):
            self.fell_behind(client)
        self.mark(client)

    def mark(self, client: Client) -> None:
        if not client.marked:
            client.marked = True
            self.to_write.append(client)
            self.schedule()

    def schedule(self) -> None:
        if not self.write_scheduled:
            self.write_scheduled = True
            asyncio.get_running_loop().call_soon(self.write)

    def turn_messages(self, topics: frozenset[str]) -> Iterator[Outgoing]:
        """This turn's messages of `topics`, in the order they were published."""
        published = self.published
        numbered = [entry for topic in topics for entry in published.get(topic, ())]
        numbered.sort(key=_number)
        return (item for _, item in numbered)

    def write(self) -> None:
        """This turn's messages, in one write per client: the bytes of each set of topics
        joined once for all its clients, then the queued clients' backlogs."""
        self.write_scheduled = False
        written = self.write_shared()
        self.published = {}
        clients, self.to_write = self.to_write, []
        for client in clients:
            client.marked = False
            written += client.write()
            if not client.backlog and not client.sending and client.writer is not None:
                self.dequeue(client)
        if written:
            self.metrics.messages_out.inc(written)

    def write_shared(self) -> int:
        """Each group with messages this turn: its bytes joined once, written to each of its
        clients not queued (whose socket takes more: the others queue them)."""
        written, full = 0, list[Client]()
        groups_of = self.groups_of
        with_news = {topics for topic in self.published for topics in groups_of.get(topic, ())}
        for topics in with_news:
            items = [frame for _, frame in self.turn_messages(topics)]
            frames = b"".join(items)
            for client in self.groups[topics]:
                writer = client.writer
                if client.queued or writer is None:
                    continue
                if writer.writable():
                    writer.write_now(frames)
                    written += len(items)
                else:
                    full.append(client)
        for client in full:  # its socket is full: its backlog waits for it
            self.enqueue(client)
        return written

    def dequeue(self, client: Client) -> None:
        """Written up: the client shares its topics' bytes again from the next turn."""
        client.queued = False
        for topic in client.topics:
            _discard(self.queued, topic, client)

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


def _number(entry: tuple[int, Outgoing]) -> int:
    return entry[0]


def _discard(members: dict[Key, set[Member]], key: Key, member: Member) -> None:
    found = members.get(key)
    if found is not None:
        found.discard(member)
        if not found:
            del members[key]
